"""Tables. Names follow DESIGN.md §3; every mutation appends a ``change`` row in its transaction."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT primary keys autoincrement on PostgreSQL; on SQLite only INTEGER PRIMARY KEY does.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# No id is ever reused (DESIGN.md §3): a deleted account's id handed to a new account would let a
# process that cached the old account's keys or credentials use them for the new one. PostgreSQL
# sequences never go back; SQLite reuses the highest rowid after a delete unless the table is
# declared AUTOINCREMENT. Every table with an integer surrogate id carries this.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)  # canonical: lowercase
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    quota_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Per-account data key, wrapped by the master key named in wrap_key_id.
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    wrap_key_id: Mapped[str] = mapped_column(String(32))
    data_key_id: Mapped[int] = mapped_column(Integer, default=1)
    # Per-account journal sequence: bumped (row lock) by every mutation, so change ids are
    # gap-free and in commit order within an account.
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    root_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # Credentials generation: bumped by every password change. A process that cached a
    # verification compares it (one indexed read) so a change made anywhere counts at once.
    cred_gen: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # How many shares this account gave (a hint, never too low): a write whose account has none
    # skips the look-up of recipients whose journals must hear of it (``service.fanout``).
    shares_out: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # How many shares it received (a hint, never too low): an account with none skips the
    # look-up of mount points; read with the credentials check every request makes anyway.
    shares_in: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Overrides of the global ``retention`` settings for this account (NULL: the defaults).
    retention: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Device(Base):
    __tablename__ = "device"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    app_password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    push_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    # "app" (app password and token) or "browser" (a web app session: the token is its cookie,
    # no app password, it expires when idle; ``service.sessions``)
    kind: Mapped[str] = mapped_column(String(16), default="app", server_default=text("'app'"))


# Device names are unique per account, compared case-insensitively.
Index("uq_device_user_name", Device.user_id, func.lower(Device.name), unique=True)


class Node(Base):
    """A file or folder. A trashed subtree keeps its shape; only its top carries trashed_at."""

    __tablename__ = "node"
    __table_args__ = (
        # Live names are unique per folder; trashed nodes may share a name with a live one.
        Index(
            "uq_node_live_name",
            "parent_id",
            "name",
            unique=True,
            sqlite_where=text("trashed_at IS NULL"),
            postgresql_where=text("trashed_at IS NULL"),
        ),
        Index("ix_node_user_trashed", "user_id", "trashed_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(1024))
    is_dir: Mapped[bool] = mapped_column(Boolean)
    current_version_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | pending
    mtime: Mapped[float] = mapped_column(Float)  # folders; files take the version's mtime
    created_at: Mapped[float] = mapped_column(Float)
    trashed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    trashed_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who moved it to the trash (the owner, or a recipient of a share); NULL before 0006.
    trashed_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FileVersion(Base):
    """Immutable once written: a revision of a file's content."""

    __tablename__ = "file_version"
    __table_args__ = (Index("ix_file_version_node", "node_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the whole content
    mtime: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    author_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    author_device_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Block(Base):
    """A stored block of one account (dedup scope), addressed in the backend by object_key."""

    __tablename__ = "block"
    __table_args__ = (
        UniqueConstraint("user_id", "hash", name="uq_block_user_hash"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    hash: Mapped[str] = mapped_column(String(64))  # BLAKE3-256 hex of the plaintext
    object_key: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256(mac key, hash) hex
    raw_size: Mapped[int] = mapped_column(Integer)
    stored_size: Mapped[int] = mapped_column(Integer)
    # hot (in the block store), archiving (a move to the cold tier under way), cold, or lost
    # (fsck found it missing or damaged)
    tier: Mapped[str] = mapped_column(String(16), default="hot")
    created_at: Mapped[float] = mapped_column(Float)
    last_access: Mapped[float] = mapped_column(Float)
    # A small file's block sealed exactly as in the backend (compressed, encrypted, block id as
    # associated data) but kept here: no object, no fsync beyond the database's commit. A row
    # with inline data needs no object; one without needs its object.
    inline_data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The cold tier's journal (``service.archive``): when the move to the cold tier finished,
    # and when a reader last asked the cold store to restore the object (GLACIER, DEEP_ARCHIVE)
    archived_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    restore_requested_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class VersionBlock(Base):
    """The ordered block list of a version; ``offset`` lets a reader seek by bisection."""

    __tablename__ = "version_block"
    __table_args__ = (Index("ix_version_block_block", "block_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("file_version.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("block.id"))
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)


class Change(Base):
    """The journal: (user_id, seq) is the cursor, gap-free and in commit order per account."""

    __tablename__ = "change"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    from_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    version_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    device_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_dir: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[float] = mapped_column(Float)


class DeadProperty(Base):
    """WebDAV dead properties, keyed by node id (so MOVE needs no property work)."""

    __tablename__ = "dead_property"

    node_id: Mapped[int] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(512), primary_key=True)  # Clark notation {ns}local
    value: Mapped[bytes] = mapped_column(LargeBinary)


class DavLock(Base):
    """WebDAV locks, shared by every server process; keyed by ref-URL as WsgiDAV expects."""

    __tablename__ = "dav_lock"

    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    root: Mapped[str] = mapped_column(Text, index=True)
    type: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    depth: Mapped[str] = mapped_column(String(16))
    owner: Mapped[bytes] = mapped_column(LargeBinary)
    principal: Mapped[str] = mapped_column(String(128))
    timeout: Mapped[float] = mapped_column(Float)
    expire: Mapped[float] = mapped_column(Float, index=True)


class Share(Base):
    """A user share: ``recipient`` may act on ``node`` (a file or folder of ``owner``) and
    everything below it with ``perms`` (Nextcloud's bits: read 1, write 2, create 4, delete 8).
    The recipient sees it at ``mount_path`` in their own tree (a root-level name at first)."""

    __tablename__ = "share"
    __table_args__ = (
        UniqueConstraint("node_id", "recipient_id", name="uq_share_node_recipient"),
        Index("ix_share_recipient", "recipient_id"),
        Index("ix_share_owner", "owner_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    perms: Mapped[int] = mapped_column(Integer)
    mount_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Link(Base):
    """A share link: whoever holds ``token`` reaches ``node`` (of ``owner``) with the rights of
    ``kind`` (view, edit, upload, drop), unless revoked, expired or used up; optionally behind
    a password (argon2). ``uses`` counts files or archives downloaded and files uploaded."""

    __tablename__ = "link"
    __table_args__ = (Index("ix_link_owner", "owner_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ChunkedUpload(Base):
    """A Nextcloud chunked upload (v2): a folder of numbered parts the client fills, then
    MOVEs as ``.file`` onto its destination. Parts are stored as sealed blocks on arrival
    (listed in ``chunked_block``); nothing is visible to readers until the MOVE commits."""

    __tablename__ = "chunked_upload"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))  # the folder name the client chose
    # The account whose keys seal the parts: the uploader's, or the owner of the share that
    # MKCOL's Destination points into. A MOVE elsewhere re-seals once.
    owner_id: Mapped[int] = mapped_column(BigInteger)
    destination: Mapped[str | None] = mapped_column(Text, nullable=True)
    total_length: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ChunkedPart(Base):
    """One part of a chunked upload; parts assemble ordered by ``sort_key`` (the number the
    part's name starts with), then by name."""

    __tablename__ = "chunked_part"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("chunked_upload.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sort_key: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class ChunkedBlock(Base):
    """The blocks of one part, in stream order (``offset`` within the part)."""

    __tablename__ = "chunked_block"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("chunked_upload.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(128), index=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_size: Mapped[int] = mapped_column(BigInteger)
    new: Mapped[bool] = mapped_column(Boolean)


class ChunkedJob(Base):
    """The outcome of an assembly that outlived its MOVE: the client polls it at
    ``OC-JobStatus-Location`` (``started``, then ``finished`` or ``error``)."""

    __tablename__ = "chunked_job"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    node_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class StagedBlock(Base):
    """A block a delta-sync client uploaded (``PUT /api/v1/blocks/<id>``) that no commit has
    used yet: sealed with the account's keys and stored; it keeps its object referenced (and
    counts against the account's free space) until a commit adopts it or the grace period
    after ``staged_at`` ends (upkeep then drops the row and reclaims the object)."""

    __tablename__ = "staged_block"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # BLAKE3-256 hex
    object_key: Mapped[str] = mapped_column(String(128), index=True)
    size: Mapped[int] = mapped_column(Integer)  # plaintext bytes
    stored_size: Mapped[int] = mapped_column(Integer)
    staged_at: Mapped[float] = mapped_column(Float, index=True)  # last PUT of the block


class JobLease(Base):
    """A scheduled job's lease: the process named ``holder`` runs it until ``expires_at``; a
    crashed holder's lease simply expires. ``last_run_at`` (when the last run started) lets
    every process agree that a period's run has happened."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)
    last_run_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ReplicationQueue(Base):
    """A copy a replicated backend owes ``store`` (its name in the config): the object was
    written while that store was down (allowed by ``min_copies``) and is written there when it
    returns. Durable, so a restart loses no owed copy."""

    __tablename__ = "replication_queue"
    __table_args__ = (UniqueConstraint("store", "object_key"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(128))
    queued_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class UploadSession(Base):
    """A resumable (tus) upload: durable across disconnects and restarts until it completes.

    Complete blocks are stored as they arrive (listed in ``upload_block``); the bytes after the
    last content-defined cut are kept as one encrypted block too (``tail_*``), so the chunker
    resumes exactly where it stopped.
    """

    __tablename__ = "upload_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    path: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    metadata_raw: Mapped[str] = mapped_column(Text, default="")
    tail_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tail_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tail_size: Mapped[int] = mapped_column(BigInteger, default=0)
    blocks_count: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # The account whose tree the file goes to and whose keys seal its blocks: the uploader's
    # own, or the owner of the share the path is in. NULL (before 0006): the uploader's.
    owner_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class UploadBlock(Base):
    """Blocks already stored for an unfinished resumable upload, in stream order."""

    __tablename__ = "upload_block"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_session.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(128))
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_size: Mapped[int] = mapped_column(BigInteger)
    new: Mapped[bool] = mapped_column(Boolean)


class LoginFlow(Base):
    """A Nextcloud Login Flow v2 in progress (``service.login_flow``): SHA-256 digests of its
    poll and login tokens, never the tokens; ``user_id`` is set once someone logged in on the
    flow's page. The successful poll deletes the row; expired rows go lazily."""

    __tablename__ = "login_flow"

    poll_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    login_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
