// Hash routes: "#/files/<path>" (browse, the default), "#/trash", "#/shared" (shared with me,
// and my shares and links) and "#/account".

const SIMPLE = new Set(["trash", "shared", "account"]);

/** "#/files/a/b" → {name: "files", path: "/a/b"}; "#/trash" → {name: "trash"}; likewise
 * "#/shared" and "#/account" */
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [head, ...rest] = raw.split("/");
  if (SIMPLE.has(head)) return { name: head };
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
