// Inline SVG icons (24×24 paths) and the file-kind rule. Icons inherit the text colour.

const PATHS = {
  // file kinds
  folder: "M3 6.5A2.5 2.5 0 0 1 5.5 4h3.6l2 2h7.4A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5z",
  file: "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z",
  image: "M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 13.5V19h14v-3l-4-4-5 5-2-2zM8.5 10a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z",
  text: "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm2 10v1.5h8V12zm0 3.5V17h8v-1.5zm0-7V10h4V8.5z",
  pdf: "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm1 11v5h1.3v-1.6H9a1.7 1.7 0 0 0 0-3.4zm1.3 1.1H9a.6.6 0 0 1 0 1.2h-.7zM11 13v5h1.6a2.5 2.5 0 0 0 0-5zm1.3 1.1h.3a1.4 1.4 0 0 1 0 2.8h-.3zM15 13v5h1.3v-2h1.6v-1.1h-1.6v-.8H18V13z",
  audio: "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm6 8v5.3a2.2 2.2 0 1 0 1.5 2V12.5H16V10z",
  video: "M4 5h11a2 2 0 0 1 2 2v2.5l4-2.5v10l-4-2.5V17a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z",
  archive: "M6 2h12a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm4 1.5V5h2v1.5h-2V8h2v1.5h-2V11h2v1.5h-2V14h-.5a1.5 1.5 0 0 0-1.5 1.5V18a1.5 1.5 0 0 0 1.5 1.5h3A1.5 1.5 0 0 0 14 18v-2.5a1.5 1.5 0 0 0-1.5-1.5H12v-1.5h2V11h-2V9.5h2V8h-2V6.5h2V5h-2V3.5zm0 13h3V18h-3z",
  // actions
  upload: "M11 16V7.8L7.7 11 6.3 9.6 12 4l5.7 5.6-1.4 1.4L13 7.8V16zm-7 2h16v2H4z",
  folderPlus: "M3 6.5A2.5 2.5 0 0 1 5.5 4h3.6l2 2h7.4A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5zM11 10v2.5H8.5v1.5H11v2.5h1.5V14H15v-1.5h-2.5V10z",
  folderUpload: "M3 6.5A2.5 2.5 0 0 1 5.5 4h3.6l2 2h7.4A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5zM12 9l-3.5 3.5h2.5V16h2v-3.5h2.5z",
  download: "M11 4h2v8.2l3.3-3.3 1.4 1.4L12 16l-5.7-5.7 1.4-1.4 3.3 3.3zM4 18h16v2H4z",
  trash: "M9 3h6l1 2h4v2H4V5h4zM6 8h12l-1 12a2 2 0 0 1-2 2H9a2 2 0 0 1-2-2z",
  rename: "M4 17.2V20h2.8l9.9-9.9-2.8-2.8zM19.7 7.1a1 1 0 0 0 0-1.4l-1.4-1.4a1 1 0 0 0-1.4 0l-1.3 1.3 2.8 2.8z",
  move: "M3 6.5A2.5 2.5 0 0 1 5.5 4h3.6l2 2h7.4A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5zM12 10v2H7.5v2H12v2l3.5-3z",
  copy: "M8 3h10a2 2 0 0 1 2 2v12h-2V5H8zM5 7h9a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2z",
  history: "M13 3a9 9 0 1 1-8.5 12h2.2A7 7 0 1 0 6 9.3L8.5 12H2V5.5l2.5 2.4A9 9 0 0 1 13 3zm-1 4h1.5v5.2l4 2.4-.8 1.3-4.7-2.9z",
  close: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z",
  restore: "M12 4a8 8 0 1 1-7.9 9.3h2A6 6 0 1 0 8 7.8L10 10H4V4l2.6 2.6A8 8 0 0 1 12 4z",
  pin: "M15 3l6 6-2 1-3 3 .5 4.5L15 19l-4-4-5 5-1-1 5-5-4-4 1.5-1.5L12 9l3-3z",
  logout: "M10 3h9a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-9v-2h9V5h-9zm-.6 5L8 9.4 10.6 12H3v2h7.6L8 16.6 9.4 18l5-5z",
  more: "M12 8a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 6a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 6a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
  info: "M12 2a10 10 0 1 1 0 20 10 10 0 0 1 0-20zm-1 8v7h2v-7zm0-3v2h2V7z",
  back: "M20 11v2H8l5.5 5.5-1.4 1.4L4.2 12l7.9-7.9 1.4 1.4L8 11z",
  drive: "M4 4h16a2 2 0 0 1 2 2v3H2V6a2 2 0 0 1 2-2zm-2 7h20v7a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2zm15 3.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z",
  share: "M18 2a3 3 0 1 1-2.2 5l-7.1 4.1a3 3 0 0 1 0 1.8l7.1 4.1a3 3 0 1 1-.8 1.4l-7.1-4.1a3 3 0 1 1 0-4.6L15 6.6A3 3 0 0 1 18 2z",
  link: "M10.6 13.4a1 1 0 0 1 0-1.4l3.5-3.5a1 1 0 1 1 1.4 1.4L12 13.4a1 1 0 0 1-1.4 0zM8.5 10.1l-2.1 2.1a3 3 0 0 0 4.2 4.2l2.1-2.1 1.4 1.4-2.1 2.1a5 5 0 0 1-7.1-7.1l2.1-2.1zm7 3.8 2.1-2.1a3 3 0 0 0-4.2-4.2l-2.1 2.1-1.4-1.4 2.1-2.1a5 5 0 0 1 7.1 7.1l-2.1 2.1z",
  user: "M12 3a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9zM4 20c0-3.6 3.6-6 8-6s8 2.4 8 6v1H4z",
  check: "M9.5 16.2 5.3 12l-1.4 1.4 5.6 5.6L20.1 8.4 18.7 7z",
};

const SVG_NS = "http://www.w3.org/2000/svg";

/** An <svg> element for icon `name` (aria-hidden; give the button its own label). */
export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", PATHS[name] || PATHS.file);
  path.setAttribute("fill-rule", "evenodd"); // inner shapes (arrows, plus signs) cut out
  svg.append(path);
  return svg;
}

const KINDS = {
  image: ["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico", "heic", "heif", "avif", "tif", "tiff"],
  text: ["txt", "md", "markdown", "csv", "tsv", "log", "json", "xml", "yaml", "yml", "toml", "ini", "cfg", "conf",
    "py", "js", "mjs", "ts", "css", "html", "htm", "c", "h", "cpp", "hpp", "rs", "go", "java", "kt", "rb", "php",
    "sh", "bash", "zsh", "sql", "tex", "rst", "srt", "vtt", "env", "gitignore", "dockerfile", "makefile"],
  pdf: ["pdf"],
  audio: ["mp3", "wav", "flac", "ogg", "oga", "opus", "m4a", "aac", "wma", "aiff"],
  video: ["mp4", "m4v", "mkv", "webm", "mov", "avi", "wmv", "mpg", "mpeg", "3gp"],
  archive: ["zip", "tar", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "iso", "dmg", "deb", "rpm", "jar"],
};
const BY_EXT = new Map();
for (const [kind, exts] of Object.entries(KINDS)) for (const e of exts) BY_EXT.set(e, kind);

/** "folder", "image", "text", "pdf", "audio", "video", "archive" or "file". */
export function kindOf(entry) {
  if (entry.is_dir) return "folder";
  const name = entry.name.toLowerCase();
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot + 1) : name;
  return BY_EXT.get(ext) || "file";
}

/** The icon of an entry, coloured by kind through CSS (class "kind-<kind>"). */
export function kindIcon(entry) {
  const kind = kindOf(entry);
  return icon(kind === "file" ? "file" : kind, `icon kind kind-${kind}`);
}
