#!/usr/bin/env python3
"""File-level import circles in the workspace's Rust sources.

Usage: python3 scripts/import_cycles.py [repo_root] [-v]

Scans every crates/*/src/**/*.rs and builds a graph file -> file from the paths a file uses:
`use crate::a::b`, `use super::x`, `use self::child::y`, `use child::z` (a child module of the
file's module), the same paths in code (`crate::a::f()`, `super::g()`, `child::h()`), with use
trees (`use crate::a::{b, c::d}`) expanded. `mod` declarations are not edges: a parent declaring
a child module does not import from it. Comments (doc comments included) and string literals
are ignored.

A path resolves through the module tree built from the `mod` declarations of each crate root
(src/lib.rs, src/main.rs, src/bin/*.rs; `#[path]` honoured; inline `mod x { ... }` blocks
tracked, so `super::` inside `mod tests { }` is the file itself): `crate::a::b` is src/a/b.rs or
src/a/b/mod.rs when `b` is a module, else the item `b` of src/a.rs (or src/a/mod.rs). An item
that its file only imports (`pub use other::Item`, `use other::Item`) resolves on to where it is
defined, so `crate::LoadError` re-exported by lib.rs is an edge to error.rs, not to lib.rs.

Prints each circle (strongly connected component of more than one file) with the edges inside
it and the paths that make them; exits 1 if any exists, 0 if none. `-v` also prints every edge.
`--self-test` checks the resolver on a small made-up workspace and exits 0 when it passes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ITEM_KW = r"(?:fn|struct|enum|union|const|static|type|trait|mod|macro_rules!)"


def strip_code(src: str) -> str:
    """Blank out comments, string and char literals (keeping newlines and byte offsets)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif re.match(r'b?r#*"', src[i:i + 80]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', src[i:])
            if m is None:
                out.append(c)
                i += 1
                continue
            hashes = m.group(2)
            end = src.find('"' + hashes, i + m.end())
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(n, j + 1)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "'":
            # char literal ('a', '\n', '\u{..}') vs lifetime ('a)
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", src[i:])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass
class FileInfo:
    path: str  # relative to repo root
    crate: str  # crate dir name + root file, e.g. "ildtrack-dicom:lib"
    module: tuple  # module path of the file within its crate root
    code: str = ""
    # inline module spans: (start, end, module path tuple)
    inline: list = field(default_factory=list)
    edges: dict = field(default_factory=dict)  # target file -> set of paths written


def find_block_end(code: str, open_idx: int) -> int:
    depth = 0
    for j in range(open_idx, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


MOD_RE = re.compile(r"(?P<attrs>(?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<name>" + IDENT + r")\s*(?P<tail>[;{])")


class Workspace:
    def __init__(self, root: str):
        self.root = root
        self.files: dict[str, FileInfo] = {}
        # (crate, module tuple) -> file path that holds the module (inline ones map to their file)
        self.modules: dict[tuple, str] = {}
        self.load()

    def rel(self, p: str) -> str:
        return os.path.relpath(p, self.root)

    def load(self):
        crates_dir = os.path.join(self.root, "crates")
        for crate in sorted(os.listdir(crates_dir)):
            src = os.path.join(crates_dir, crate, "src")
            if not os.path.isdir(src):
                continue
            roots = []
            for name in ("lib.rs", "main.rs"):
                if os.path.isfile(os.path.join(src, name)):
                    roots.append((f"{crate}:{name[:-3]}", os.path.join(src, name)))
            bindir = os.path.join(src, "bin")
            if os.path.isdir(bindir):
                for name in sorted(os.listdir(bindir)):
                    p = os.path.join(bindir, name)
                    if name.endswith(".rs"):
                        roots.append((f"{crate}:bin/{name[:-3]}", p))
                    elif os.path.isfile(os.path.join(p, "main.rs")):
                        roots.append((f"{crate}:bin/{name}", os.path.join(p, "main.rs")))
            for crate_id, root_file in roots:
                self.walk_module_file(crate_id, root_file, (), os.path.dirname(root_file))
            # .rs files no root reaches (not compiled): still scanned, placed by their path
            for dirpath, _, names in os.walk(src):
                for name in sorted(names):
                    p = os.path.join(dirpath, name)
                    if name.endswith(".rs") and self.rel(p) not in self.files:
                        parts = os.path.relpath(p, src)[:-3].split(os.sep)
                        if parts[-1] == "mod":
                            parts = parts[:-1]
                        crate_id = roots[0][0] if roots else f"{crate}:?"
                        self.add_file(crate_id, p, tuple(parts))

    def add_file(self, crate_id: str, path: str, module: tuple) -> FileInfo:
        with open(path, encoding="utf-8", errors="replace") as f:
            code = strip_code(f.read())
        info = FileInfo(self.rel(path), crate_id, module, code)
        self.files[info.path] = info
        self.modules[(crate_id, module)] = info.path
        return info

    def walk_module_file(self, crate_id: str, path: str, module: tuple, child_dir: str):
        """child_dir: where `mod x;` files of this module live."""
        if self.rel(path) in self.files:
            return
        info = self.add_file(crate_id, path, module)
        self.scan_mods(crate_id, info, info.code, 0, module, child_dir)

    def scan_mods(self, crate_id, info, code, offset, module, child_dir):
        pos = 0
        while True:
            m = MOD_RE.search(code, pos)
            if not m:
                return
            name = m.group("name")
            pm = re.search(r'#\[\s*path\s*=\s*"([^"]*)"', self.original_attrs(info, offset + m.start(), offset + m.start("name")))
            if m.group("tail") == ";":
                if pm:
                    cand = [os.path.join(child_dir, pm.group(1))]
                else:
                    cand = [os.path.join(child_dir, name + ".rs"), os.path.join(child_dir, name, "mod.rs")]
                for c in cand:
                    if os.path.isfile(c):
                        sub_dir = os.path.dirname(c) if os.path.basename(c) == "mod.rs" or pm else os.path.join(child_dir, name)
                        if pm and os.path.basename(c) != "mod.rs":
                            sub_dir = os.path.join(os.path.dirname(c), os.path.splitext(os.path.basename(c))[0])
                        self.walk_module_file(crate_id, c, module + (name,), sub_dir)
                        break
                pos = m.end()
            else:
                open_idx = m.end() - 1
                end = find_block_end(code, open_idx)
                inner_mod = module + (name,)
                info.inline.append((offset + open_idx, offset + end, inner_mod))
                self.modules[(crate_id, inner_mod)] = info.path
                self.scan_mods(crate_id, info, code[open_idx + 1:end], offset + open_idx + 1, inner_mod,
                               os.path.join(child_dir, name))
                pos = end + 1

    def original_attrs(self, info: FileInfo, start: int, end: int) -> str:
        # path attributes hold a string literal, which strip_code blanked: read the source itself
        with open(os.path.join(self.root, info.path), encoding="utf-8", errors="replace") as f:
            return f.read()[max(0, start - 200):end]

    # ---------------------------------------------------------------- resolution
    def module_at(self, info: FileInfo, idx: int) -> tuple:
        best = info.module
        best_len = -1
        for s, e, mod in info.inline:
            if s <= idx <= e and len(mod) > best_len:
                best, best_len = mod, len(mod)
        return best

    def is_module(self, crate_id: str, module: tuple) -> bool:
        return (crate_id, module) in self.modules

    def absolute(self, crate_id: str, here: tuple, segs: list) -> tuple | None:
        """Turn a written path into an absolute module path, or None if external."""
        if not segs:
            return None
        first = segs[0]
        if first == "crate":
            return tuple(segs[1:])
        if first in ("super", "self"):
            base = list(here)
            i = 0
            while i < len(segs) and segs[i] in ("super", "self"):
                if segs[i] == "super":
                    if not base:
                        return None
                    base.pop()
                i += 1
            return tuple(base) + tuple(segs[i:])
        if self.is_module(crate_id, here + (first,)):
            return here + tuple(segs)
        return None

    def resolve(self, crate_id: str, abs_path: tuple, item_call: bool, depth: int = 0) -> str | None:
        """File that defines what abs_path names."""
        mod = ()
        segs = list(abs_path)
        i = 0
        while i < len(segs):
            cand = mod + (segs[i],)
            last = i == len(segs) - 1
            if self.is_module(crate_id, cand) and not (last and item_call):
                mod = cand
                i += 1
                continue
            break
        file = self.modules.get((crate_id, mod))
        if file is None:
            return None
        if i < len(segs) and depth < 8:
            target = self.follow_import(crate_id, file, mod, segs[i], item_call, depth)
            if target is not None:
                return target
        return file

    def follow_import(self, crate_id, file, mod, name, item_call, depth):
        """If `name` is not defined in `file` but imported there, the file that defines it."""
        info = self.files[file]
        code = self.module_code(info, mod)
        if re.search(r"\b" + ITEM_KW + r"\s+" + re.escape(name) + r"\b", code):
            return None
        for written, alias in self.use_paths(code):
            if alias == name and written and written[-1] not in ("*",):
                segs = list(written)
                if segs[-1] == "self":
                    segs = segs[:-1]
                ap = self.absolute(crate_id, mod, segs)
                if ap is None:
                    return None
                return self.resolve(crate_id, ap, item_call, depth + 1)
        return None

    def module_code(self, info: FileInfo, mod: tuple) -> str:
        """Code of module `mod` inside info's file, without nested inline modules' bodies."""
        if mod == info.module:
            s, e = 0, len(info.code)
        else:
            span = [(s, e) for s, e, m in info.inline if m == mod]
            if not span:
                return ""
            s, e = span[0]
        code = info.code[s:e]
        for s2, e2, m in info.inline:
            if len(m) == len(mod) + 1 and m[:len(mod)] == mod and s <= s2 and e2 <= e:
                code = code[:s2 - s] + " " * (e2 - s2) + code[e2 - s:]
        return code

    # ---------------------------------------------------------------- path extraction
    @staticmethod
    def use_paths(code: str):
        """Every (path segments, bound name) from `use` declarations in code."""
        for m in re.finditer(r"\buse\s+([^;]*);", code):
            for segs, alias in expand_tree(m.group(1)):
                yield segs, alias

    def edges(self):
        for info in self.files.values():
            code = info.code
            written: list[tuple[int, list, bool]] = []
            use_spans = []
            for m in re.finditer(r"\buse\s+([^;]*);", code):
                use_spans.append((m.start(), m.end()))
                for segs, _ in expand_tree(m.group(1)):
                    if segs and segs[-1] == "*":
                        segs = segs[:-1]
                    if segs and segs[-1] == "self":
                        segs = segs[:-1]
                    written.append((m.start(), segs, False))
            path_re = re.compile(r"(?<![A-Za-z0-9_:])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)(\s*(?:\(|!|::\s*<))?")
            for m in path_re.finditer(code):
                if any(s <= m.start() < e for s, e in use_spans):
                    continue
                segs = [s.strip() for s in m.group(1).split("::")]
                follow = (m.group(2) or "").strip()
                written.append((m.start(), segs, follow in ("(", "!")))
            for idx, segs, call in written:
                here = self.module_at(info, idx)
                ap = self.absolute(info.crate, here, segs)
                if ap is None:
                    continue
                target = self.resolve(info.crate, ap, call)
                if target is None or target == info.path:
                    continue
                info.edges.setdefault(target, set()).add("::".join(segs))


def expand_tree(tree: str):
    """`a::{b, c::{d, e as f}, self}` -> [(['a','b'],'b'), (['a','c','d'],'d'), (['a','c','e'],'f'), (['a','self'],'a')]."""
    tree = re.sub(r"\s+", " ", tree.strip())
    tree = re.sub(r"^(pub(\([^)]*\))?\s+)", "", tree)
    out = []

    def parse(s: str, prefix: list):
        s = s.strip()
        if not s:
            return
        # split top-level on '::{'
        brace = s.find("{")
        if brace >= 0 and s.endswith("}"):
            head = s[:brace].strip().rstrip(":").strip()
            head_segs = [x.strip() for x in head.split("::") if x.strip()] if head else []
            inner = s[brace + 1:-1]
            depth, start = 0, 0
            for k, ch in enumerate(inner):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    parse(inner[start:k], prefix + head_segs)
                    start = k + 1
            parse(inner[start:], prefix + head_segs)
            return
        alias = None
        am = re.match(r"(.*)\s+as\s+(" + IDENT + r")$", s)
        if am:
            s, alias = am.group(1), am.group(2)
        segs = prefix + [x.strip() for x in s.split("::") if x.strip()]
        if not segs:
            return
        bound = alias or (segs[-2] if segs[-1] == "self" and len(segs) > 1 else segs[-1])
        out.append((segs, bound))

    parse(tree.lstrip(":"), [])
    return out


def tarjan(nodes, succ):
    index, low, on, stack, sccs = {}, {}, set(), [], []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return sccs


SELF_TEST = {
    "crates/t/src/lib.rs": "mod a;\nmod b;\npub use a::Thing;\n/// [`crate::b::f`] in a doc comment is no edge\n",
    "crates/t/src/a/mod.rs": "mod inner;\npub struct Thing;\nuse crate::b::f;\n"
    "#[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { super::inner::g(); }\n}\n",
    "crates/t/src/a/inner.rs": "use super::Thing;\npub fn g() { let _ = \"crate::b::f\"; }\n",
    "crates/t/src/b.rs": "pub fn f() -> crate::Thing { crate::a::inner::g(); todo!() }\n",
}


def self_test() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        for rel, text in SELF_TEST.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.write(text)
        ws = Workspace(root)
        ws.edges()
        got = {(a, b) for a, f in ws.files.items() for b in f.edges}
        want = {
            ("crates/t/src/lib.rs", "crates/t/src/a/mod.rs"),  # pub use a::Thing
            ("crates/t/src/a/mod.rs", "crates/t/src/b.rs"),  # use crate::b::f
            ("crates/t/src/a/mod.rs", "crates/t/src/a/inner.rs"),  # super::inner::g() in mod tests
            ("crates/t/src/a/inner.rs", "crates/t/src/a/mod.rs"),  # use super::Thing
            ("crates/t/src/b.rs", "crates/t/src/a/mod.rs"),  # crate::Thing, re-exported by lib.rs
            ("crates/t/src/b.rs", "crates/t/src/a/inner.rs"),  # crate::a::inner::g()
        }
        cycles = [c for c in tarjan(ws.files.keys(), {p: set(f.edges) for p, f in ws.files.items()}) if len(c) > 1]
        ok = got == want and cycles == [["crates/t/src/a/inner.rs", "crates/t/src/a/mod.rs", "crates/t/src/b.rs"]]
        if not ok:
            print("self-test FAILED\n edges:", sorted(got), "\n want:", sorted(want), "\n circles:", cycles)
            return 1
        print("self-test ok")
        return 0


def main(argv):
    if "--self-test" in argv:
        return self_test()
    verbose = "-v" in argv
    args = [a for a in argv[1:] if a != "-v"]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ws = Workspace(root)
    ws.edges()
    succ = {p: set(f.edges) for p, f in ws.files.items()}
    if verbose:
        for p in sorted(ws.files):
            for t in sorted(ws.files[p].edges):
                print(f"{p} -> {t}  ({', '.join(sorted(ws.files[p].edges[t]))})")
    cycles = [c for c in tarjan(ws.files.keys(), succ) if len(c) > 1]
    if not cycles:
        print(f"no import circles ({len(ws.files)} files)")
        return 0
    for c in sorted(cycles):
        print(f"circle of {len(c)} files:")
        members = set(c)
        for a in c:
            for b in sorted(ws.files[a].edges):
                if b in members:
                    print(f"  {a} -> {b}  ({', '.join(sorted(ws.files[a].edges[b]))})")
    print(f"{len(cycles)} circle(s), {sum(len(c) for c in cycles)} files")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
