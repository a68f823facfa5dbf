// Hash routes: "#/files/<path>" (browse, the default) and "#/trash". Later sections add theirs.

/** "#/files/a/b" → {name: "files", path: "/a/b"}; "#/trash" → {name: "trash"} */
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [head, ...rest] = raw.split("/");
  if (head === "trash") return { name: "trash" };
  const parts = rest.filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { name: "files", path: `/${parts.join("/")}` };
}

/** The hash of a folder: "/a b/c" → "#/files/a%20b/c" */
export function filesHash(path) {
  return path === "/" ? "#/files/" : `#/files${path.split("/").map(encodeURIComponent).join("/")}`;
}
