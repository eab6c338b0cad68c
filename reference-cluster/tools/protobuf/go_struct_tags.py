#!/usr/bin/env python3
"""Extract the Go struct tags of the Kubernetes API types from a kubectl binary.

Why: the protobuf wire format cannot tell a Go pointer field set to zero (`replicas: 0`, which
matters) from a plain field left at its zero value (which upstream's JSON omits), nor says which
fields are `json:",inline"`. Upstream's own answer lives in the Go struct tags and field kinds,
and every kubectl binary carries them in its reflection metadata. This script walks that metadata
(Go 1.2x ABI, linux/amd64, non-PIE ELF) and prints one line per field of every named struct
in a `k8s.io/...` package:

    <go package>\t<type name>\t<protobuf tag number>\t<json tag>\t<go kind>

`<go kind>` is `ptr`, `slice`, `map`, `struct:<pkg>.<Name>` or the scalar kind (`string`,
`int32`, ...). Fields without a protobuf tag are skipped.

Usage: go_struct_tags.py KUBECTL_1_32 [MORE_GO_BINARIES...] > go_fields.tsv
"""
import os
import struct
import sys

KIND_NAMES = {
    1: "bool", 2: "int", 3: "int8", 4: "int16", 5: "int32", 6: "int64", 7: "uint", 8: "uint8",
    9: "uint16", 10: "uint32", 11: "uint64", 12: "uintptr", 13: "float32", 14: "float64",
    17: "array", 20: "interface", 21: "map", 22: "ptr", 23: "slice", 24: "string", 25: "struct",
}
TFLAG_UNCOMMON = 1
TFLAG_EXTRA_STAR = 2
TFLAG_NAMED = 4


class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise SystemExit("not a little-endian 64-bit ELF file")
        shoff, = struct.unpack_from("<Q", d, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        secs = []
        for i in range(shnum):
            off = shoff + i * shentsize
            name, typ, flags, addr, offset, size = struct.unpack_from("<IIQQQQ", d, off)
            secs.append([name, typ, addr, offset, size])
        strtab = secs[shstrndx]
        self.sections = {}
        for name, typ, addr, offset, size in secs:
            end = d.index(b"\0", strtab[3] + name)
            sname = d[strtab[3] + name:end].decode()
            self.sections[sname] = (addr, offset, size, typ)

    def off(self, addr):
        for addr0, offset, size, typ in self.sections.values():
            if typ != 8 and addr0 <= addr < addr0 + size and addr0 != 0:
                return offset + addr - addr0
        raise KeyError(hex(addr))

    def u8(self, a):
        return self.data[self.off(a)]

    def u16(self, a):
        return struct.unpack_from("<H", self.data, self.off(a))[0]

    def i32(self, a):
        return struct.unpack_from("<i", self.data, self.off(a))[0]

    def u64(self, a):
        return struct.unpack_from("<Q", self.data, self.off(a))[0]


def varint(elf, a):
    v = shift = 0
    while True:
        b = elf.u8(a)
        a += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, a


def read_name(elf, a):
    """A runtime `abi.Name`: flags byte, varint length, bytes, then the tag if flagged."""
    flags = elf.u8(a)
    n, p = varint(elf, a + 1)
    name = elf.data[elf.off(p):elf.off(p) + n].decode("utf-8", "replace")
    tag = ""
    if flags & 2:
        tn, q = varint(elf, p + n)
        tag = elf.data[elf.off(q):elf.off(q) + tn].decode("utf-8", "replace")
    return name, tag, flags


class Types:
    def __init__(self, elf):
        self.elf = elf
        # moduledata.types is the start of .rodata in the Go linker's layout; every nameOff
        # and typeOff is relative to it.
        self.base = elf.sections[".rodata"][0]

    def kind(self, t):
        return self.elf.u8(t + 23) & 0x1F

    def name(self, t):
        off = self.elf.i32(t + 40)
        s, _, _ = read_name(self.elf, self.base + off)
        if self.elf.u8(t + 20) & TFLAG_EXTRA_STAR:
            s = s[1:]
        return s

    def pkg_path(self, t):
        """The package of a named struct, from the `abi.UncommonType` that follows its
        `abi.StructType` (48-byte Type, PkgPath name, Fields slice)."""
        if self.kind(t) != 25 or not self.elf.u8(t + 20) & TFLAG_UNCOMMON:
            return ""
        off = self.elf.i32(t + 80)
        if off == 0:
            return ""
        s, _, _ = read_name(self.elf, self.base + off)
        return s

    def children(self, t):
        """Types a type refers to: the element of a pointer, slice or array (first word after
        the 48-byte header), a map's key and value, a struct's fields."""
        k = self.kind(t)
        e = self.elf
        if k in (17, 22, 23):
            return [e.u64(t + 48)]
        if k == 21:
            return [e.u64(t + 48), e.u64(t + 56)]
        if k == 25:
            return [f[1] for f in self.fields(t)]
        return []

    def fields(self, t):
        e = self.elf
        ptr, n = e.u64(t + 56), e.u64(t + 64)
        out = []
        for i in range(n):
            fa = ptr + 24 * i
            name, tag, flags = read_name(e, e.u64(fa))
            out.append((name, e.u64(fa + 8), tag))
        return out

    def describe(self, t):
        k = self.kind(t)
        if k == 25 and self.elf.u8(t + 20) & TFLAG_NAMED:
            return "struct:%s.%s" % (self.pkg_path(t), self.name(t).split(".")[-1])
        return KIND_NAMES.get(k, "kind%d" % k)


def struct_rows(path):
    elf = Elf(path)
    ty = Types(elf)
    _, tl_off, tl_size, _ = elf.sections[".typelink"]
    todo = [ty.base + struct.unpack_from("<i", elf.data, tl_off + 4 * i)[0] for i in range(tl_size // 4)]
    # Named types are reachable through the pointer-to-them that typelinks lists and through
    # field, element and map key/value types.
    seen = set()
    structs = []
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        try:
            k = ty.kind(t)
            ptr_to = elf.i32(t + 44)
            if ptr_to:
                todo.append(ty.base + ptr_to)
            todo.extend(ty.children(t))
        except (KeyError, UnicodeDecodeError, struct.error):
            continue
        if k == 25 and elf.u8(t + 20) & TFLAG_NAMED:
            pkg = ty.pkg_path(t)
            if pkg.startswith("k8s.io/"):
                structs.append((pkg, ty.name(t).split(".")[-1], t))
    rows = set()
    for pkg, name, t in structs:
        for _, ftype, tag in ty.fields(t):
            pb = parse_tag(tag).get("protobuf")
            if not pb:
                continue
            parts = pb.split(",")
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            rows.add((pkg, name, int(parts[1]), parse_tag(tag).get("json", ""), ty.describe(ftype)))
    return rows


def main():
    """Each package comes from the first binary that has it, so a newer or unrelated program
    only fills in packages (apiextensions) that kubectl does not link."""
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    taken = {}
    rows = set()
    for path in sys.argv[1:]:
        for row in struct_rows(path):
            if taken.setdefault(row[0], path) == path:
                rows.add(row)
    print("# Go struct tags of the Kubernetes API types, made by go_struct_tags.py from:")
    for path in dict.fromkeys(taken.values()):
        print("#   %s: %s" % (os.path.basename(path), " ".join(sorted(p for p, b in taken.items() if b == path))))
    for r in sorted(rows):
        print("\t".join(str(x) for x in r))


def parse_tag(tag):
    """Go's reflect.StructTag lookup: key:"value" pairs separated by spaces."""
    out = {}
    i = 0
    while i < len(tag):
        while i < len(tag) and tag[i] == " ":
            i += 1
        j = tag.find(":", i)
        if j < 0 or j + 1 >= len(tag) or tag[j + 1] != '"':
            break
        key = tag[i:j]
        k = j + 2
        val = []
        while k < len(tag) and tag[k] != '"':
            if tag[k] == "\\" and k + 1 < len(tag):
                k += 1
            val.append(tag[k])
            k += 1
        out[key] = "".join(val)
        i = k + 1
    return out


if __name__ == "__main__":
    main()
