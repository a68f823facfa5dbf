// The revisions of a file: list (paged), download any, restore one as the new current
// revision, pin/unpin (a pinned revision is never pruned).

import { files } from "./api.js";
import { confirmDialog, toast } from "./dialogs.js";
import { icon } from "./icons.js";
import { formatDate, formatDateFull, formatSize, h, mount } from "./util.js";
import { downloadUrl } from "./actions.js";

/**
 * Render the revisions of `entry.path` into `box`. `onRestored()` runs after a restore (the
 * listing's size and date change).
 */
export async function renderRevisions(box, entry, { onRestored } = {}) {
  const list = h("ol", { class: "revisions", "aria-label": `Revisions of ${entry.name}` });
  const more = h("button", { type: "button", class: "btn", hidden: true }, "Load older revisions");
  const status = h("p", { class: "muted" }, "Loading revisions…");
  mount(box, status, list, more);
  let cursor = null;

  function item(rev) {
    const pinBtn = h("button", {
      type: "button",
      class: ["btn small", rev.pinned && "active"],
      "aria-pressed": rev.pinned ? "true" : "false",
      title: rev.pinned ? "Pinned: kept forever. Click to unpin." : "Pin: keep this revision forever",
      onclick: async () => {
        try {
          await files.pin(entry.path, rev.rev, !rev.pinned);
          rev.pinned = !rev.pinned;
          li.replaceWith(item(rev));
        } catch (err) {
          toast(err.userText || String(err), "error");
        }
      },
    }, icon("pin"), rev.pinned ? "Pinned" : "Pin");
    const author = rev.author?.device ? `${rev.author.user || ""} · ${rev.author.device}` : rev.author?.user || "";
    const li = h("li", { class: ["revision", rev.current && "current"], "data-rev": rev.rev },
      h("div", { class: "rev-main" },
        h("time", { datetime: rev.modified || rev.created, title: `Saved ${formatDateFull(rev.created)}` }, formatDate(rev.created || rev.modified)),
        rev.current ? h("span", { class: "badge" }, "current") : null,
        rev.pinned ? h("span", { class: "badge pinned" }, "pinned") : null),
      h("div", { class: "rev-meta muted" }, formatSize(rev.size), author ? ` · ${author}` : ""),
      h("div", { class: "rev-actions" },
        h("button", {
          type: "button",
          class: "btn small",
          onclick: () => downloadUrl(files.downloadUrl(entry.path, rev.rev), entry.name),
        }, icon("download"), "Download"),
        rev.current ? null : h("button", {
          type: "button",
          class: "btn small",
          onclick: async () => {
            const ok = await confirmDialog("Restore revision",
              `Make the revision of ${formatDateFull(rev.created)} the current version of "${entry.name}"? The present one stays in the history.`,
              { okText: "Restore" });
            if (!ok) return;
            try {
              await files.restore(entry.path, rev.rev);
              toast("Revision restored");
              onRestored?.();
              renderRevisions(box, entry, { onRestored });
            } catch (err) {
              toast(err.userText || String(err), "error");
            }
          },
        }, icon("restore"), "Restore"),
        pinBtn));
    return li;
  }

  async function page() {
    more.disabled = true;
    try {
      const data = await files.revisions(entry.path, cursor);
      list.append(...data.revisions.map(item));
      cursor = data.has_more ? data.cursor : null;
      more.hidden = !cursor;
      status.textContent = list.children.length ? `${list.children.length}${cursor ? "+" : ""} revisions` : "No revisions.";
    } catch (err) {
      status.textContent = err.userText || String(err);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", page);
  await page();
}
