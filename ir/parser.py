"""Read the printed form of a jaxpr (see `ir.printer`) back into a ClosedJaxpr.

    parse(text, consts=None, *, max_bytes=..., max_eqns=..., max_elements=...) -> ClosedJaxpr

A real parser, safe on untrusted text: a regex scanner and a recursive
descent over the grammar below, with no eval/exec/pickle. The scanner makes
tokens as the parser asks for them, so an error is reported as soon as it is
reached, whatever follows it. Recursion happens only for nested tuples and
nested jaxprs, and is capped at `MAX_DEPTH`; the equations of a jaxpr are read
by a loop, so long programs take linear time. Every equation is type-checked
where it stands (its params against its primitive's schema, then its operand
and output types), and the text's size, its number of equations and the
number of elements of every declared array are limited (`DEFAULT_MAX_*`).
Every malformed input raises `JaxprParseError` (a ValueError) that names the
line and column, what was expected there and what was found.

Grammar (docs/jaxpr_grammar.md has the full version):

    jaxpr   = "{" "lambda" binder* ";" binder* "." "let" eqns "in" outs "}"
    binder  = var ":" type
    type    = dtype "[" [dim ("," dim)*] "]" ["{" "weak" "}"]
    eqns    = (eqn (";" | NEWLINE))* [eqn]        -- up to the `in` that `(` follows
    eqn     = binder* "=" primitive ["[" (name "=" value)* "]"] atom*
    atom    = var | literal
    literal = (number | complex | "True" | "False" | "inf" | "nan") ":" type   -- rank 0
    complex = ["-"] part ("+" | "-") part "j"   -- part: a non-negative number, inf or nan; e.g. 1.5-2.0j
    value   = number | name | tuple | jaxpr
    tuple   = "(" ")" | "(" value "," ")" | "(" value ("," value)+ [","] ")"
    outs    = "(" ")" | "(" atom "," ")" | "(" atom ("," atom)+ [","] ")"

Whitespace separates tokens and is otherwise ignored, except that a new line
ends an equation's operand list (as `;` does). `lambda`, `let`, `in`, `inf`
and `nan` are keywords only where the grammar expects them: the printer
names variable 221 `in` and variable 8801 `nan`, so `in` is the keyword only
when `(` follows it, and `inf`/`nan` are literals only when `:` follows them.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ir import config
from ir import primitives  # noqa: F401  (registers every primitive, so names resolve)
from ir.check import check
from ir.core import DTYPE_FROM_SHORT_NAME, MAX_RANK, ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var
from ir.core import concrete_aval, float0
from ir.primitive import PRIMITIVES, Str

MAX_DEPTH = 64          # nested tuples + nested jaxprs; keeps recursion far from Python's limit
MAX_NUMBER_LENGTH = 100  # characters in a number token; int() of huge digit strings is quadratic
MAX_DIMENSION = 2**63 - 1

# Limits on what one text may make, each a keyword of `parse`. The defaults
# admit large real programs and keep hostile text from exhausting memory.
DEFAULT_MAX_BYTES = 256 * 2**20  # the text's length
DEFAULT_MAX_EQNS = 10**7         # equations, those of nested jaxprs included
DEFAULT_MAX_ELEMENTS = 2**31     # elements of each declared array (evaluation allocates them)

__all__ = ["JaxprParseError", "parse", "MAX_DEPTH", "MAX_NUMBER_LENGTH", "MAX_RANK",
           "DEFAULT_MAX_BYTES", "DEFAULT_MAX_EQNS", "DEFAULT_MAX_ELEMENTS"]


class JaxprParseError(ValueError):
    """Malformed jaxpr text. `line` and `column` are 1-based; `reason` is the
    message without its position."""

    def __init__(self, reason: str, line: int, column: int, excerpt: str = ""):
        self.reason, self.line, self.column = reason, line, column
        super().__init__(f"line {line}, column {column}: {reason}{excerpt}")


def parse(text: str, consts=None, *, max_bytes=DEFAULT_MAX_BYTES, max_eqns=DEFAULT_MAX_EQNS,
          max_elements=DEFAULT_MAX_ELEMENTS) -> ClosedJaxpr:
    """The ClosedJaxpr printed as `text`.

    `consts` are the values of the constvars (the binders before `;`),
    checked against their types. Without them a jaxpr that has constvars comes
    back as ``ClosedJaxpr(jaxpr, None)``.

    Limits (each exceeded one is a JaxprParseError that names it): `max_bytes`
    characters of text, `max_eqns` equations in all (nested jaxprs included),
    `max_elements` elements in any one declared array. Whatever reads IR from
    outside passes them through.
    """
    for name, limit in (("max_bytes", max_bytes), ("max_eqns", max_eqns), ("max_elements", max_elements)):
        if type(limit) is not int or limit < 0:
            raise TypeError(f"parse: {name} must be a non-negative int, got {limit!r}")
    if not isinstance(text, str):
        raise JaxprParseError(f"expected jaxpr text (a str), found {type(text).__name__}", 1, 1)
    if len(text) > max_bytes:
        raise JaxprParseError(f"the text is {len(text)} characters long, more than max_bytes={max_bytes}", 1, 1)
    parser = _Parser(text, max_eqns, max_elements)
    start = parser.token  # the first token: errors about the whole jaxpr point here
    try:
        jaxpr, const_binders = parser.jaxpr()
    except RecursionError:  # only if called with the stack already nearly full: MAX_DEPTH bounds ours
        raise parser.error(parser.token, "nesting too deep for the Python stack") from None
    parser.expect(_EOF, "end of input after the jaxpr")
    try:
        check(jaxpr)  # NB: the per-equation checks above should already have caught everything
    except (TypeError, ValueError) as error:
        raise parser.error(start, f"ill-typed jaxpr: {_shortened(error)}") from None
    if consts is None:
        return ClosedJaxpr(jaxpr, [] if not jaxpr.constvars else None)
    return ClosedJaxpr(jaxpr, _checked_consts(parser, start, jaxpr, const_binders, consts))


def _shortened(error, limit=300):
    """An error's message, cut short: hostile parameters can make it huge."""
    text = str(error)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _checked_consts(parser, start, jaxpr, const_binders, consts):
    try:
        consts = list(consts)
    except TypeError:
        raise parser.error(start, f"consts must be a list of arrays, got {type(consts).__name__}") from None
    if len(consts) != len(jaxpr.constvars):
        raise parser.error(start, f"the jaxpr has {len(jaxpr.constvars)} constvars but "
                                  f"{len(consts)} consts were given")
    for i, (var, token, value) in enumerate(zip(jaxpr.constvars, const_binders, consts)):
        try:
            aval = concrete_aval(value)
        except TypeError as error:
            raise parser.error(token, f"const {i} for {token[_TEXT]!r}: {error}") from None
        if aval.shape != var.aval.shape or aval.dtype != var.aval.dtype:
            raise parser.error(token, f"const {i} for {token[_TEXT]!r} has type {aval.str_short()}, "
                                      f"expected {var.aval.strip_weak_type().str_short()}")
    return consts


# -------------------- tokens --------------------

_TOKEN_RE = re.compile(r"""
    (?P<space> [ \t\r\n]+ )
  | (?P<number> -?(?:inf|nan|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
                [+-](?:inf|nan|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)j(?![A-Za-z0-9_])
              | -(?:inf|nan)(?![A-Za-z0-9_])
              | -?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)? )
  | (?P<name> [A-Za-z_][A-Za-z0-9_]* )
  | (?P<punct> [{}\[\]():;,=.] )
  | (?P<bad> . )
""", re.VERBOSE | re.ASCII | re.DOTALL)

_VAR_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*", re.ASCII)
_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_COMPLEX_RE = re.compile(r"(-?(?:inf|nan|[0-9.]+(?:[eE][+-]?[0-9]+)?))([+-])((?:inf|nan|[0-9.]+(?:[eE][+-]?[0-9]+)?))j",
                         re.ASCII)
_LITERAL_WORDS = ("True", "False", "inf", "nan")

# A token is a tuple (kind, text, start, newline): `kind` is 'name', 'number',
# 'eof', 'bad' or the punctuation character itself; `start` its offset in the
# text; `newline` whether a new line precedes it.
_KIND, _TEXT, _START, _NEWLINE = range(4)
_EOF = "eof"


def _scan(text):
    """The tokens of `text`, one at a time, as the parser asks for them: never
    a table of the whole text, so an error early in a huge text costs nothing
    for the rest. Scanning stops at the first bad token (an unexpected character
    or an overlong number), which the parser reports when it gets there; 'eof'
    tokens follow without end, so lookahead never runs off the text."""
    newline = False
    for match in _TOKEN_RE.finditer(text):  # NB: the hot loop of parsing a long program
        kind = match.lastgroup
        if kind == "space":
            newline = newline or "\n" in match.group()
            continue
        value = match.group()
        if kind == "punct":
            kind = value
        elif kind == "number" and len(value) > MAX_NUMBER_LENGTH:
            kind = "bad"
        yield (kind, value, match.start(), newline)
        newline = False
        if kind == "bad":
            break
    end = (_EOF, "", len(text), newline)
    while True:
        yield end


# Parameter values written as bare names that stand for dtypes (the printer
# writes `np.dtype.name`; float0's name is 'void', so that reads as float0 too).
_PARAM_DTYPES = {np.dtype(d).name: np.dtype(d) for d in DTYPE_FROM_SHORT_NAME.values() if d != float0}
_PARAM_DTYPES.update({"float0": float0, "void": float0})
_PARAM_CONSTANTS = {"True": True, "False": False, "None": None}


# -------------------- the parser --------------------

class _Parser:
    """Recursive descent over the token stream, with one token of lookahead:
    `token` is the next token, `ahead` the one after it."""

    def __init__(self, text, max_eqns, max_elements):
        self.text = text
        self.max_eqns, self.max_elements = max_eqns, max_elements
        self.num_eqns = 0
        self._tokens = _scan(text)
        self.token = next(self._tokens)
        self.ahead = next(self._tokens)
        self.depth = 0

    # ---- token access ----

    def at(self, kind, text=None):
        token = self.token
        return token[_KIND] == kind and (text is None or token[_TEXT] == text)

    def next(self):
        """Consume the next token and return it."""
        token = self.token
        self.token = self.ahead
        self.ahead = next(self._tokens)
        return token

    def expect(self, kind, what):
        if self.token[_KIND] != kind:
            raise self.expected(what)
        return self.next()

    def expect_word(self, word):
        if not self.at("name", word):
            raise self.expected(repr(word))
        return self.next()

    def at_in(self):
        """At the `in (` that ends the equations (a variable may be named `in`)."""
        return self.at("name", "in") and self.ahead[_KIND] == "("

    def at_binder(self):
        return self.token[_KIND] == "name" and self.ahead[_KIND] == ":"

    @staticmethod
    def describe(token):
        if token[_KIND] == _EOF:
            return "end of input"
        text = token[_TEXT]
        return repr(text if len(text) <= 40 else text[:37] + "...")

    # ---- errors ----

    def error(self, token, reason):
        """A JaxprParseError at `token`."""
        pos = token[_START]
        line = self.text.count("\n", 0, pos) + 1
        line_start = self.text.rfind("\n", 0, pos) + 1
        return JaxprParseError(reason, line, pos - line_start + 1, self._excerpt(line_start, pos))

    def _excerpt(self, line_start, pos):
        """The offending line, cut to at most 80 characters around `pos`, and a caret."""
        left = max(line_start, pos - 40)
        line_end = self.text.find("\n", pos, left + 80)  # bounded: the line may be the whole text
        shown = self.text[left:left + 80 if line_end < 0 else line_end]
        if not shown.isprintable():
            return ""  # escaping would shift the caret; the line and column say where
        return f"\n    {shown}\n    {' ' * (pos - left)}^"

    def expected(self, what, token=None):
        """`expected <what>, found <token>` (default: the next token)."""
        token = self.token if token is None else token
        if token[_KIND] == "bad":  # a scanning error, reported where the parser reached it
            text = token[_TEXT]
            if len(text) > MAX_NUMBER_LENGTH:
                return self.error(token, f"number longer than {MAX_NUMBER_LENGTH} characters")
            return self.error(token, f"unexpected character {text!r}")
        return self.error(token, f"expected {what}, found {self.describe(token)}")

    def enter(self, token):
        """One level deeper into a nested tuple or jaxpr: bounded, so that
        hostile nesting is an error and never a RecursionError."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(token, f"nesting deeper than {MAX_DEPTH} levels of tuples and jaxprs")

    # ---- jaxprs ----

    def jaxpr(self):
        """A jaxpr, and the name tokens of its constvars (for errors about consts)."""
        self.enter(self.expect("{", "'{' opening a jaxpr"))
        self.expect_word("lambda")
        const_binders = self.binders()
        self.expect(";", "a binder 'name:type' or ';' after the constvars")
        in_binders = self.binders()
        self.expect(".", "a binder 'name:type' or '.' after the input binders")
        self.expect_word("let")
        scope = {}  # name -> Var; each jaxpr has its own, as jaxprs are closed
        constvars = [self.bind(scope, t, aval) for t, aval in const_binders]
        invars = [self.bind(scope, t, aval) for t, aval in in_binders]
        eqns = self.eqns(scope)
        outvars = self.sequence(lambda: self.atom(scope))
        self.expect("}", "'}' closing the jaxpr")
        self.depth -= 1
        return Jaxpr(constvars, invars, eqns, outvars), [t for t, _ in const_binders]

    def binders(self):
        """`name:type` binders, as (name token, aval) pairs, not yet in scope."""
        found = []
        while self.at_binder():
            token = self.next()
            if not _VAR_NAME_RE.fullmatch(token[_TEXT]):
                raise self.expected("a variable name (lowercase letters)", token)
            self.next()  # ':'
            found.append((token, self.type()))
        return found

    def bind(self, scope, token, aval):
        name = token[_TEXT]
        if name in scope:
            raise self.error(token, f"variable {name!r} is bound twice")
        var = scope[name] = Var(aval)
        return var

    def type(self):
        token = self.expect("name", "a dtype such as f32")
        dtype = DTYPE_FROM_SHORT_NAME.get(token[_TEXT])
        if dtype is None:
            raise self.expected(f"a dtype ({', '.join(DTYPE_FROM_SHORT_NAME)})", token)
        self.expect("[", f"'[' after the dtype {token[_TEXT]}")
        dims = []
        if not self.at("]"):
            dims.append(self.dimension())
            while self.at(","):
                self.next()
                if len(dims) == MAX_RANK:
                    raise self.error(self.token, f"more than {MAX_RANK} dimensions")
                dims.append(self.dimension())
        self.expect("]", "',' or ']' in the shape")
        self.check_size(token, dims)
        weak = self.at("{") and self.ahead[_KIND] == "name" and self.ahead[_TEXT] == "weak"
        if weak:
            self.next()
            self.next()
            self.expect("}", "'}' after '{weak'")
        return ShapedArray(dims, dtype, weak)

    def dimension(self):
        token = self.token
        if token[_KIND] != "number" or not token[_TEXT].isdigit():
            raise self.expected("a dimension (a non-negative integer)")
        value = int(token[_TEXT])
        if value > MAX_DIMENSION:
            raise self.error(token, f"dimension {token[_TEXT]} is larger than {MAX_DIMENSION}")
        self.next()
        return value

    def check_size(self, token, dims):
        """At most max_elements elements, and no dimension beyond that either
        (an empty array may not carry one: what it is broadcast or padded to may be full)."""
        if dims and (max(dims) > self.max_elements or math.prod(dims) > self.max_elements):
            shape = ",".join(map(str, dims))
            raise self.error(token, f"{token[_TEXT]}[{shape}] has more elements or a longer dimension "
                                    f"than max_elements={self.max_elements}")

    # ---- equations ----

    def eqns(self, scope):
        """Equations up to `in (`, read by a loop (no recursion per equation)."""
        eqns = []
        while not self.at_in():
            eqns.append(self.eqn(scope))
            if self.at(";"):
                self.next()
        self.next()  # 'in'
        return eqns

    def eqn(self, scope):
        if not (self.at_binder() or self.at("=")):
            raise self.expected("an equation 'name:type = primitive ...' or 'in'")
        self.num_eqns += 1
        if self.num_eqns > self.max_eqns:
            raise self.error(self.token, f"more than max_eqns={self.max_eqns} equations")
        out_binders = self.binders()
        self.expect("=", "a binder 'name:type' or '='")
        prim_token = self.expect("name", "a primitive name")
        prim = PRIMITIVES.get(prim_token[_TEXT])
        if prim is None:
            raise self.error(prim_token, f"unknown primitive {self.describe(prim_token)}")
        if prim.runs_host_code:  # NB: untrusted text must never name code to run
            raise self.error(prim_token, f"{prim.name} calls a Python function of the program that traced it; "
                                         f"a program read from text cannot hold one (host callbacks do not parse)")
        params = self.params(prim) if self.at("[") else {}
        # The operands end at a new line, ';' or `in (`: a line is one equation.
        invars = []
        while self.token[_KIND] in ("name", "number") and not self.token[_NEWLINE] and not self.at_in():
            invars.append(self.atom(scope))
        if not (self.at(";") or self.token[_NEWLINE] or self.at_in()):
            raise self.expected("';', a new line or 'in' after the equation")
        # Outputs come into scope after the operands: `b = sin b` is an error.
        outvars = [self.bind(scope, t, aval) for t, aval in out_binders]
        self.check_eqn(prim, prim_token, invars, params, out_binders)
        if prim.name in ("while", "while_reverse"):  # a loop from text may run forever: under max_loop_iterations
            config.mark_untrusted(params["cond_jaxpr"])
        return Eqn(prim, invars, outvars, params)

    def check_eqn(self, prim, prim_token, invars, params, out_binders):
        """Type-check one equation here, to report errors at its position."""
        try:
            prim.check_params(params)  # first: ill-typed params must not meet a cached result
            expected = prim.abstract_eval([x.aval for x in invars], params)
        except (TypeError, ValueError) as error:
            raise self.error(prim_token, f"{prim.name} rejects these operands or parameters: "
                                         f"{_shortened(error)}") from None
        if len(expected) != len(out_binders):
            raise self.error(prim_token, f"{prim.name} gives {len(expected)} outputs, "
                                         f"{len(out_binders)} are bound")
        for (token, aval), want in zip(out_binders, expected):
            if aval != want:
                raise self.error(token, f"{token[_TEXT]} is declared {aval.str_short()} but "
                                        f"{prim.name} gives {want.str_short()}")

    def atom(self, scope):
        """A variable in `scope`, or a literal `value:type`."""
        token = self.token
        kind, text = token[_KIND], token[_TEXT]
        if kind not in ("name", "number"):
            raise self.expected("an operand (a variable or a literal)")
        self.next()
        if kind == "name" and not self.at(":"):
            var = scope.get(text)
            if var is None:
                raise self.error(token, f"undefined variable {self.describe(token)}")
            return var
        if kind == "name" and text not in _LITERAL_WORDS:
            raise self.error(token, f"expected an operand (a variable or a literal), found the binder "
                                    f"'{text[:40]}:' (equations are separated by ';' or new lines)")
        self.next()  # ':'
        type_token = self.token
        aval = self.type()
        if aval.shape != ():
            raise self.error(type_token, f"a literal must have a rank-0 type, found {aval.str_short()}")
        return Literal(self.literal_value(token, aval.dtype), aval)

    def literal_value(self, token, dtype):
        """The NumPy scalar of `dtype` that `token` writes."""
        text = token[_TEXT]
        if dtype.kind == "b":
            if text not in ("True", "False"):
                raise self.expected("True or False for a bool literal", token)
            return np.bool_(text == "True")
        if text in ("True", "False"):
            raise self.error(token, f"{text} is not a {dtype.name} literal")
        if dtype.kind in "iu":
            if not _INT_RE.fullmatch(text):
                raise self.expected(f"an integer for a {dtype.name} literal", token)
            value, info = int(text), np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise self.error(token, f"{text} is out of range for {dtype.name}")
            return dtype.type(value)
        if dtype.kind == "f":
            return self.float_value(token, dtype.type)
        if dtype.kind == "c":
            return self.complex_value(token, dtype)
        raise self.error(token, f"literals of dtype {dtype.name} are not supported")

    def complex_value(self, token, dtype):
        """`re+imj` (a real number stands for re+0j), each part read as the float of its precision."""
        text = token[_TEXT]
        part_type = np.dtype(f"f{dtype.itemsize // 2}").type
        match = _COMPLEX_RE.fullmatch(text)
        if match is None:
            if text.endswith("j"):
                raise self.expected(f"a number re+imj for a {dtype.name} literal", token)
            return dtype.type(self.float_value(token, part_type))
        re_text, sign, im_text = match.groups()
        re_part = self.float_value((token[0], re_text, *token[2:]), part_type)
        im_part = self.float_value((token[0], im_text, *token[2:]), part_type)
        value = np.empty((), dtype)
        value.real, value.imag = re_part, -im_part if sign == "-" else im_part
        return value[()]

    def float_value(self, token, float_type):
        text = token[_TEXT]
        if text.endswith("j"):
            raise self.error(token, f"{text} is a complex number, not a {np.dtype(float_type).name} value")
        with np.errstate(all="ignore"):  # overflow is reported below, not warned about
            value = float_type(text)
        if np.isinf(value) and "inf" not in text:
            raise self.error(token, f"{text} is out of range for {np.dtype(float_type).name}")
        return value

    def sequence(self, item):
        """`()`, `(x,)` or `(x, y, ...)` (a trailing comma allowed), as a list."""
        self.expect("(", "'('")
        items = []
        while not self.at(")"):
            items.append(item())
            if self.at(","):
                self.next()
            elif len(items) == 1:
                raise self.expected("',' (a one-element tuple is written '(x,)')")
            elif not self.at(")"):
                raise self.expected("',' or ')'")
        self.next()
        return items

    # ---- parameters ----

    def params(self, prim):
        """`[name=value ...]`. A bare name is a dtype, True/False/None or a
        string, except where the primitive's schema says the param is a str: there
        it is the name itself, so that a function named `float32` keeps its name."""
        self.next()  # '['
        params = {}
        while not self.at("]"):
            key = self.expect("name", "a parameter name or ']'")
            name = key[_TEXT]
            if name in params:
                raise self.error(key, f"parameter {name!r} is given twice")
            self.expect("=", f"'=' after the parameter name {name}")
            if isinstance(prim.params.get(name), Str) and self.at("name"):
                params[name] = self.next()[_TEXT]
            else:
                params[name] = self.value()
        self.next()
        return params

    def value(self):
        token = self.token
        kind, text = token[_KIND], token[_TEXT]
        if kind == "number":
            self.next()
            return int(text) if _INT_RE.fullmatch(text) else float(self.float_value(token, float))
        if kind == "name":
            self.next()
            if text in _PARAM_CONSTANTS:
                return _PARAM_CONSTANTS[text]
            if text in ("inf", "nan"):
                return float(text)
            return _PARAM_DTYPES.get(text, text)  # any other name is a string
        if kind == "(":
            self.enter(token)
            items = self.sequence(self.value)
            self.depth -= 1
            return tuple(items)
        if kind == "{":
            jaxpr, _ = self.jaxpr()
            return ClosedJaxpr(jaxpr, [] if not jaxpr.constvars else None)
        raise self.expected("a parameter value (a number, a name, a tuple or a jaxpr)")
