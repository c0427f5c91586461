"""`export` and `load`: a traced program saved as files, run without its source.

    ft.export(f, *args, path="model")  # model/manifest.json, model/program.jaxpr, model/constants.npz
    g = ft.load("model")               # in any process: g(*args) == f(*args)

`program.jaxpr` is the optimized jaxpr's printed form, `constants.npz` the
values of its constvars (plain NumPy arrays, read with allow_pickle=False),
and `manifest.json` a format name and version, the names and types of the
constants, the input and output pytree structures as JSON records (tuple,
list, dict with str or int keys, None, namedtuple by name and fields; no
pickle, no class imported), and the SHA-256 of the other two files, so that a
file changed or corrupted after export is refused by name. The loaded function calls the jaxpr as one
`jit_call` equation, so it runs, jits, vmaps and differentiates as the
original does, at the argument types it was exported at (the full format:
docs/export_format.md).

Loading untrusted files is as safe as `parse_jaxpr`, whose limits `load`
takes and applies: nothing read is executed or unpickled, the manifest is
checked field by field, and every constant's declared size, dtype and shape
is checked against the jaxpr's constvars before its data is read. (The
checksums catch accidents, not an attacker, who can recompute them: the
checks after them are what make hostile files safe.)
"""
from __future__ import annotations

import hashlib
import json
import keyword
import operator
import os
import zipfile

import numpy as np

from ftrans._api_util import check_callable, flatten_args, gc_paused, trace_flat
from ftrans.tree_util import PyTreeDef, tree_flatten, tree_unflatten
from ir import passes
from ir.core import ClosedJaxpr
from ir.errors import api_boundary, at_user_line
from ir.parser import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_EQNS, JaxprParseError, parse

__all__ = ["ExportError", "export", "load"]

FORMAT = "ftrans-export"
FORMAT_VERSION = 1
MANIFEST, PROGRAM, CONSTANTS = "manifest.json", "program.jaxpr", "constants.npz"

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_TREE_RECORDS = 10**6     # records of one pytree structure in the manifest
MAX_NAME_LENGTH = 200        # a namedtuple's name or field, a dict key, the program's name
MAX_NPY_HEADER_BYTES = 10000  # as NumPy's own default limit when it reads a header
DEFAULT_MAX_CONSTANT_BYTES = 2**32  # all constants together


class ExportError(ValueError):
    """An exported program that cannot be written, or files that cannot be
    loaded: says which file and what is wrong with it."""


# -------------------- export --------------------

@api_boundary
def export(fun, *args, path):
    """Trace `fun` at `args` (their shapes and dtypes), optimize its jaxpr, and
    write it under the directory `path` (made if absent; its three files are
    replaced). Returns the ClosedJaxpr written. `ft.load(path)` reads it back."""
    check_callable(fun, "export")
    path = os.fspath(path)
    leaves, in_tree, in_avals = flatten_args(args, "export")
    in_records = encode_tree(in_tree, "an input")
    with gc_paused():
        closed, out_tree = trace_flat(fun, in_tree, in_avals, "export")
        closed = passes.optimize(closed)
    out_records = encode_tree(out_tree, "an output")
    consts = [_host_array(c, i) for i, c in enumerate(closed.consts)]
    text = str(closed)
    try:  # what is written must read back: a parameter the printer cannot write faithfully fails here, not at load
        parse(text, consts)
    except JaxprParseError as error:
        raise ExportError(at_user_line(f"export: the traced program does not read back from its printed form "
                                       f"({error}); it cannot be exported")) from None
    names = [f"c{i}" for i in range(len(consts))]
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "name": _program_name(fun),
        "inputs": {"tree": in_records, "types": [a.str_short() for a in closed.jaxpr.in_avals]},
        "outputs": {"tree": out_records, "types": [a.str_short() for a in closed.jaxpr.out_avals]},
        "constants": [{"name": n, "type": v.aval.str_short()} for n, v in zip(names, closed.jaxpr.constvars,
                                                                              strict=True)],
    }
    if os.path.exists(path) and not os.path.isdir(path):
        raise ExportError(at_user_line(f"export: path {path!r} exists and is not a directory"))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, PROGRAM), "w", encoding="utf-8") as f:
        f.write(text)
    np.savez(os.path.join(path, CONSTANTS), **dict(zip(names, consts, strict=True)))
    manifest["sha256"] = {name: _sha256(os.path.join(path, name)) for name in (PROGRAM, CONSTANTS)}
    with open(os.path.join(path, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return ClosedJaxpr(closed.jaxpr, consts)


def _sha256(filename):
    digest = hashlib.sha256()
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _program_name(fun):
    name = getattr(fun, "__name__", type(fun).__name__)
    return name if isinstance(name, str) and name.isidentifier() and len(name) <= MAX_NAME_LENGTH else "exported"


def _host_array(value, index):
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        value = value.get()  # NB: a constant captured from the GPU is saved from host memory
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise ExportError(at_user_line(f"export: constant {index} has dtype {array.dtype}, which .npz cannot hold "
                                       "without pickle"))
    return array


# -------------------- pytree structures as JSON records --------------------
# One record per PyTreeDef node, in its post-order: "*" for a leaf, else an object
# {"node": kind, "children": n, "leaves": whether all n children are leaves} with
# "keys" for a dict (["str", k] or ["int", k] each) and "name", "fields" for a
# namedtuple.

def encode_tree(treedef: PyTreeDef, what):
    records = []
    for record in treedef.nodes:
        if record is None:
            records.append("*")
            continue
        node_type, aux, n, all_leaves = record
        entry = {"children": n, "leaves": all_leaves}
        if node_type is tuple:
            entry["node"] = "tuple"
        elif node_type is list:
            entry["node"] = "list"
        elif node_type is type(None):
            entry["node"] = "none"
        elif node_type is dict:
            entry["node"] = "dict"
            entry["keys"] = [_encode_key(k, what) for k in aux]
        elif issubclass(node_type, tuple) and hasattr(node_type, "_fields"):
            entry.update(node="namedtuple", name=node_type.__name__, fields=list(node_type._fields))
        else:
            raise ExportError(at_user_line(
                f"export: {what} holds a {node_type.__name__} (a registered pytree class): an exported program's "
                "inputs and outputs may hold only tuples, lists, dicts, None and namedtuples, which load can "
                "rebuild without importing your code"))
        records.append(entry)
    return records


def _encode_key(key, what):
    if type(key) is str:
        return ["str", key]
    if type(key) is int:
        return ["int", key]
    raise ExportError(at_user_line(f"export: {what} holds a dict with a key of type {type(key).__name__}; "
                                   "exported dicts take str or int keys"))


def decode_tree(records, where):
    """The PyTreeDef that `records` describe, each record checked."""
    if not isinstance(records, list) or len(records) > MAX_TREE_RECORDS:
        raise _bad(where, f"must be a list of at most {MAX_TREE_RECORDS} records")
    nodes, depth, num_leaves = [], 0, 0  # depth: finished subtrees waiting for their parent
    for i, record in enumerate(records):
        at = f"{where}[{i}]"
        if record == "*":
            nodes.append(None)
            depth, num_leaves = depth + 1, num_leaves + 1
            continue
        node = _decode_node(record, at)
        n, all_leaves = node[2], node[3]
        if all_leaves:
            num_leaves += n
        elif n > depth:
            raise _bad(at, f"takes {n} children but only {depth} precede it")
        else:
            depth -= n
        depth += 1
        nodes.append(node)
    if depth != 1:
        raise _bad(where, f"describes {depth} trees, not one")
    return PyTreeDef(nodes, num_leaves)


_NODE_FIELDS = {"tuple": set(), "list": set(), "none": set(), "dict": {"keys"}, "namedtuple": {"name", "fields"}}


def _decode_node(record, at):
    if not isinstance(record, dict) or not isinstance(record.get("node"), str) or record["node"] not in _NODE_FIELDS:
        raise _bad(at, f"must be \"*\" or a node record with \"node\" one of {sorted(_NODE_FIELDS)}")
    kind = record["node"]
    expected = {"node", "children", "leaves"} | _NODE_FIELDS[kind]
    if set(record) != expected:
        raise _bad(at, f"a {kind} record has exactly the fields {sorted(expected)}, got {sorted(record)}")
    n, all_leaves = record["children"], record["leaves"]
    if type(n) is not int or not 0 <= n <= MAX_TREE_RECORDS or type(all_leaves) is not bool:
        raise _bad(at, "\"children\" must be a count and \"leaves\" a boolean")
    if not all_leaves and n == 0:
        raise _bad(at, "a node without children has \"leaves\": true")
    if kind == "tuple":
        return (tuple, None, n, all_leaves)
    if kind == "list":
        return (list, None, n, all_leaves)
    if kind == "none":
        if n != 0:
            raise _bad(at, "None has no children")
        return (type(None), None, 0, True)
    if kind == "dict":
        keys = _decode_keys(record["keys"], n, at)
        return (dict, keys, n, all_leaves)
    name, fields = record["name"], record["fields"]
    if not _is_name(name) or not isinstance(fields, list) or len(fields) != n \
            or not all(_is_name(f) and not f.startswith("_") for f in fields) or len(set(fields)) != n:
        raise _bad(at, f"a namedtuple needs an identifier for its name and {n} distinct identifiers (not starting "
                       "with '_') for its fields")
    return (_namedtuple_class(name, tuple(fields)), None, n, all_leaves)


def _decode_keys(keys, n, at):
    if not isinstance(keys, list) or len(keys) != n:
        raise _bad(at, f"a dict of {n} children needs a list of {n} keys")
    decoded = []
    for key in keys:
        ok = isinstance(key, list) and len(key) == 2 and (
            (key[0] == "str" and isinstance(key[1], str) and len(key[1]) <= MAX_NAME_LENGTH)
            or (key[0] == "int" and type(key[1]) is int))
        if not ok:
            raise _bad(at, "each dict key is [\"str\", text] or [\"int\", number]")
        decoded.append(key[1])
    if len({type(k) for k in decoded}) > 1 or decoded != sorted(set(decoded)):
        raise _bad(at, "a dict's keys must be distinct, of one type, and sorted (as flattening orders them)")
    return tuple(decoded)


def _is_name(text):
    return isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text) \
        and len(text) <= MAX_NAME_LENGTH


_NAMEDTUPLE_CLASSES = {}


def _namedtuple_class(name, fields):
    """A namedtuple-like class (a tuple subclass with `_fields` and one property
    per field), made without `collections.namedtuple`, which compiles source
    text: loading runs no code built from the files. One class per (name, fields),
    so equal structures compare equal across calls."""
    cls = _NAMEDTUPLE_CLASSES.get((name, fields))
    if cls is None:
        def __new__(cls, *values):
            if len(values) != len(fields):
                raise TypeError(f"{name} takes {len(fields)} values, got {len(values)}")
            return tuple.__new__(cls, values)

        def __repr__(self):
            return f"{name}(" + ", ".join(f"{f}={v!r}" for f, v in zip(fields, self, strict=True)) + ")"

        namespace = {"__slots__": (), "_fields": fields, "__new__": __new__, "__repr__": __repr__,
                     "_asdict": lambda self: dict(zip(fields, self, strict=True)),
                     "__module__": "ftrans.loaded"}
        namespace.update({f: property(operator.itemgetter(i)) for i, f in enumerate(fields)})
        cls = _NAMEDTUPLE_CLASSES[(name, fields)] = type(name, (tuple,), namespace)
    return cls


def _bad(where, reason):
    return ExportError(at_user_line(f"load: {where}: {reason}"))


# -------------------- load --------------------

class LoadedFunction:
    """The function an exported program computes: call it with arguments of the
    structure, shapes and dtypes it was exported at. `.jaxpr` is its ClosedJaxpr,
    `.in_tree` the structure of its positional arguments (a tuple),
    `.out_tree` that of its result."""

    def __init__(self, closed, in_records, out_tree, name, path):
        self.jaxpr, self._in_records, self.out_tree = closed, in_records, out_tree
        self.in_tree = decode_tree(in_records, "inputs")  # a tuple of the positional arguments
        self.__name__ = self.__qualname__ = name
        self.path = path

    @api_boundary
    def __call__(self, *args):
        leaves, treedef = tree_flatten(args)
        try:
            records = encode_tree(treedef, "an argument")
        except ExportError:
            records = None
        if records != self._in_records:
            raise TypeError(at_user_line(f"{self.__name__} (loaded from {self.path!r}) takes arguments of "
                                         f"structure {self.in_tree}, got {treedef}"))
        return tree_unflatten(self.out_tree, self.jaxpr(*leaves))

    def __repr__(self):
        return f"<ftrans loaded function {self.__name__} from {self.path!r}>"


@api_boundary
def load(path, *, max_bytes=DEFAULT_MAX_BYTES, max_eqns=DEFAULT_MAX_EQNS, max_elements=DEFAULT_MAX_ELEMENTS,
         max_constant_bytes=DEFAULT_MAX_CONSTANT_BYTES):
    """The function exported under the directory `path` (by `ft.export`).

    Safe on untrusted files: `max_bytes`, `max_eqns`, `max_elements` are
    `parse_jaxpr`'s limits on the program text; `max_constant_bytes` bounds the
    constants' total size. Anything malformed is an ExportError (a ValueError)
    naming the file and what is wrong."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ExportError(at_user_line(f"load: {path!r} is not a directory (export writes a directory)"))
    manifest = _read_manifest(path)
    text = _read_text(os.path.join(path, PROGRAM), max_bytes, PROGRAM, manifest["sha256"][PROGRAM])
    try:
        parsed = parse(text, max_bytes=max_bytes, max_eqns=max_eqns, max_elements=max_elements)
    except JaxprParseError as error:
        raise ExportError(at_user_line(f"load: {PROGRAM}: {error}")) from None
    jaxpr = parsed.jaxpr
    _check_types(manifest["inputs"]["types"], jaxpr.in_avals, "inputs")
    _check_types(manifest["outputs"]["types"], jaxpr.out_avals, "outputs")
    constants = manifest["constants"]
    _check_types([c["type"] for c in constants], [v.aval for v in jaxpr.constvars], "constants")
    in_tree = decode_tree(manifest["inputs"]["tree"], f"{MANIFEST}: inputs.tree")
    out_tree = decode_tree(manifest["outputs"]["tree"], f"{MANIFEST}: outputs.tree")
    if in_tree.num_leaves != len(jaxpr.invars) or out_tree.num_leaves != len(jaxpr.outvars):
        raise ExportError(at_user_line(f"load: {MANIFEST}: its trees have {in_tree.num_leaves} input and "
                                       f"{out_tree.num_leaves} output leaves; the program has {len(jaxpr.invars)} "
                                       f"inputs and {len(jaxpr.outvars)} outputs"))
    wanted = [(c["name"], v.aval) for c, v in zip(constants, jaxpr.constvars, strict=True)]
    consts = _read_constants(os.path.join(path, CONSTANTS), wanted, max_constant_bytes, manifest["sha256"][CONSTANTS])
    return LoadedFunction(ClosedJaxpr(jaxpr, consts), manifest["inputs"]["tree"], out_tree, manifest["name"], path)


def _read_text(filename, limit, what, sha256=None):
    try:
        with open(filename, "rb") as f:
            data = f.read(limit + 1)
    except OSError as error:
        raise ExportError(at_user_line(f"load: cannot read {what}: {error.strerror}")) from None
    if len(data) > limit:
        raise ExportError(at_user_line(f"load: {what} is longer than {limit} bytes (the limit)"))
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise _changed(what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExportError(at_user_line(f"load: {what} is not UTF-8 text (byte {error.start})")) from None


def _changed(what):
    return ExportError(at_user_line(f"load: {what} does not match its SHA-256 in {MANIFEST}: the file was changed "
                                    "or corrupted after export"))


_MANIFEST_FIELDS = {"format", "version", "name", "inputs", "outputs", "constants", "sha256"}


def _read_manifest(path):
    text = _read_text(os.path.join(path, MANIFEST), MAX_MANIFEST_BYTES, MANIFEST)
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ExportError(at_user_line(f"load: {MANIFEST} is not JSON: {str(error)[:200]}")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(at_user_line(f"load: {MANIFEST} is not an ftrans export (its \"format\" is not {FORMAT!r})"))
    if manifest.get("version") != FORMAT_VERSION:
        raise ExportError(at_user_line(f"load: {MANIFEST} has format version {manifest.get('version')!r}; this "
                                       f"ftrans reads version {FORMAT_VERSION}"))
    if set(manifest) != _MANIFEST_FIELDS:
        raise ExportError(at_user_line(f"load: {MANIFEST} has the fields {sorted(manifest)}, expected "
                                       f"{sorted(_MANIFEST_FIELDS)}"))
    if not _is_name(manifest["name"]):
        raise ExportError(at_user_line(f"load: {MANIFEST}: \"name\" must be an identifier"))
    for side in ("inputs", "outputs"):
        entry = manifest[side]
        if not isinstance(entry, dict) or set(entry) != {"tree", "types"} or not isinstance(entry["types"], list) \
                or not all(isinstance(t, str) for t in entry["types"]):
            raise ExportError(at_user_line(f"load: {MANIFEST}: \"{side}\" must hold a \"tree\" and a list of "
                                           "\"types\" (strings)"))
    constants = manifest["constants"]
    if not isinstance(constants, list) or not all(
            isinstance(c, dict) and set(c) == {"name", "type"} and isinstance(c["type"], str) for c in constants) \
            or [c["name"] for c in constants] != [f"c{i}" for i in range(len(constants))]:
        raise ExportError(at_user_line(f"load: {MANIFEST}: \"constants\" must list {{\"name\": \"c<i>\", \"type\": "
                                       "...}} for i = 0, 1, ... in order"))
    hashes = manifest["sha256"]
    if not isinstance(hashes, dict) or set(hashes) != {PROGRAM, CONSTANTS} or not all(
            isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in hashes.values()):
        raise ExportError(at_user_line(f"load: {MANIFEST}: \"sha256\" must give the SHA-256 (64 hex digits) of "
                                       f"{PROGRAM} and {CONSTANTS}"))
    return manifest


def _check_types(recorded, avals, what):
    actual = [a.str_short() for a in avals]
    if recorded != actual:
        raise ExportError(at_user_line(f"load: {MANIFEST} gives the {what} the types {_short_list(recorded)}, but "
                                       f"{PROGRAM} declares {_short_list(actual)}"))


def _short_list(items, limit=8):
    shown = ", ".join(map(str, items[:limit]))
    return f"({shown}{f' and {len(items) - limit} more' if len(items) > limit else ''})"


def _read_constants(filename, wanted, max_constant_bytes, sha256):
    """The arrays of `constants.npz`, in the order of `wanted` ((name, aval) pairs),
    the file's size and checksum checked first, then each member's npy header
    (dtype, shape) before its data is read."""
    total = sum(int(np.prod(aval.shape, dtype=object)) * aval.dtype.itemsize for _, aval in wanted)
    if total > max_constant_bytes:
        raise ExportError(at_user_line(f"load: the program's constants take {total} bytes, more than "
                                       f"max_constant_bytes={max_constant_bytes}"))
    try:
        size = os.path.getsize(filename)
    except OSError as error:
        raise ExportError(at_user_line(f"load: cannot read {CONSTANTS}: {error.strerror}")) from None
    if size > total + (len(wanted) + 1) * (MAX_NPY_HEADER_BYTES + 1024):  # the arrays, their headers, the zip's records
        raise ExportError(at_user_line(f"load: {CONSTANTS} is {size} bytes, too large for the constants the program "
                                       f"declares ({total} bytes)"))
    if _sha256(filename) != sha256:
        raise _changed(CONSTANTS)
    try:
        archive = zipfile.ZipFile(filename)
    except (OSError, zipfile.BadZipFile) as error:
        raise ExportError(at_user_line(f"load: {CONSTANTS} is not a readable .npz archive: {error}")) from None
    with archive:
        members = archive.infolist()
        names = [m.filename for m in members]
        expected = [f"{name}.npy" for name, _ in wanted]
        if sorted(names) != sorted(expected):
            raise ExportError(at_user_line(f"load: {CONSTANTS} holds {_short_list(sorted(names))}, expected "
                                           f"{_short_list(expected)} (one array per constant of {PROGRAM})"))
        by_name = {m.filename: m for m in members}
        consts = []
        for (name, aval), member in zip(wanted, expected, strict=True):
            consts.append(_read_member(archive, by_name[member], name, aval))
    return consts


def _read_member(archive, info, name, aval):
    where = f"load: {CONSTANTS}: {name}"
    nbytes = int(np.prod(aval.shape, dtype=object)) * aval.dtype.itemsize
    if info.file_size > nbytes + MAX_NPY_HEADER_BYTES + 256:
        raise ExportError(at_user_line(f"{where} is {info.file_size} bytes, too large for "
                                       f"{aval.strip_weak_type().str_short()}"))
    try:
        with archive.open(info) as f:  # the header first: a huge or pickled array is refused before any allocation
            _check_npy_header(f, where, aval)
        with archive.open(info) as f:
            array = np.lib.format.read_array(f, allow_pickle=False, max_header_size=MAX_NPY_HEADER_BYTES)
    except ExportError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ExportError(at_user_line(f"{where}: not a valid .npy array ({str(error)[:200]})")) from None
    if array.dtype != aval.dtype or array.shape != aval.shape:  # NB: the header said so already
        raise ExportError(at_user_line(f"{where} does not match its header"))
    return array


def _check_npy_header(f, where, aval):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    else:
        raise ValueError(f"unknown .npy format version {version}")
    if dtype.hasobject or dtype != aval.dtype or tuple(shape) != aval.shape:
        raise ExportError(at_user_line(f"{where} is {dtype}{list(shape)}, but the program declares it "
                                       f"{aval.strip_weak_type().str_short()}"))
