"""Helpers every HTTP door shares (DESIGN.md §1: ``httpcommon/``); no door imports another."""
