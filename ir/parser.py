"""Read the printed form of a jaxpr (see `ir.printer`) back into a ClosedJaxpr.

    parse(text, consts=None) -> ClosedJaxpr

A real parser, safe on untrusted text: a regex tokenizer and a recursive
descent over the grammar below, with no eval/exec/pickle. Recursion happens
only for nested tuples and nested jaxprs, and is capped at `MAX_DEPTH`; the
equations of a jaxpr are read by a loop, so long programs take linear time.
Every malformed input raises `JaxprParseError` (a ValueError) that names the
line and column, what was expected there and what was found.

Grammar (docs/jaxpr_grammar.md has the full version):

    jaxpr   = "{" "lambda" binder* ";" binder* "." "let" eqns "in" outs "}"
    binder  = var ":" type
    type    = dtype "[" [dim ("," dim)*] "]" ["{" "weak" "}"]
    eqns    = (eqn (";" | NEWLINE))* [eqn]        -- up to the `in` that `(` follows
    eqn     = binder* "=" primitive ["[" (name "=" value)* "]"] atom*
    atom    = var | literal
    literal = (number | "True" | "False" | "inf" | "nan") ":" type   -- rank 0
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

import re

import numpy as np

from ir import primitives  # noqa: F401  (registers every primitive, so names resolve)
from ir.check import check
from ir.core import DTYPE_FROM_SHORT_NAME, ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var
from ir.core import concrete_aval, float0
from ir.primitive import PRIMITIVES

MAX_DEPTH = 64          # nested tuples + nested jaxprs; keeps recursion far from Python's limit
MAX_NUMBER_LENGTH = 100  # characters in a number token; int() of huge digit strings is quadratic
MAX_RANK = 64  # NumPy's limit; also keeps hostile shapes from making abstract evaluation slow
MAX_DIMENSION = 2**63 - 1

__all__ = ["JaxprParseError", "parse", "MAX_DEPTH", "MAX_NUMBER_LENGTH", "MAX_RANK"]


class JaxprParseError(ValueError):
    """Malformed jaxpr text. `line` and `column` are 1-based; `reason` is the
    message without its position."""

    def __init__(self, reason: str, line: int, column: int, excerpt: str = ""):
        self.reason, self.line, self.column = reason, line, column
        super().__init__(f"line {line}, column {column}: {reason}{excerpt}")


def parse(text: str, consts=None) -> ClosedJaxpr:
    """The ClosedJaxpr printed as `text`.

    `consts` are the values of the constvars (the binders before `;`),
    checked against their types. Without them a jaxpr that has constvars comes
    back as ``ClosedJaxpr(jaxpr, None)``.
    """
    if not isinstance(text, str):
        raise JaxprParseError(f"expected jaxpr text (a str), found {type(text).__name__}", 1, 1)
    parser = _Parser(text)
    start = parser.i  # the first token: errors about the whole jaxpr point here
    try:
        jaxpr, const_binders = parser.jaxpr()
    except RecursionError:  # only if called with the stack already nearly full: MAX_DEPTH bounds ours
        raise parser.error(parser.i, "nesting too deep for the Python stack") from None
    parser.expect("eof", "end of input after the jaxpr")
    try:
        check(jaxpr)  # NB: the per-equation checks above should already have caught everything
    except Exception as error:  # hostile params can make abstract evaluation raise anything
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
            raise parser.error(token, f"const {i} for {parser.texts[token]!r}: {error}") from None
        if aval.shape != var.aval.shape or aval.dtype != var.aval.dtype:
            raise parser.error(token, f"const {i} for {parser.texts[token]!r} has type {aval.str_short()}, "
                                      f"expected {var.aval.strip_weak_type().str_short()}")
    return consts


# -------------------- tokens --------------------

_TOKEN_RE = re.compile(r"""
    (?P<space> [ \t\r\n]+ )
  | (?P<number> -(?:inf|nan)(?![A-Za-z0-9_])
              | -?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)? )
  | (?P<name> [A-Za-z_][A-Za-z0-9_]* )
  | (?P<punct> [{}\[\]():;,=.] )
  | (?P<bad> . )
""", re.VERBOSE | re.ASCII | re.DOTALL)

_VAR_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*", re.ASCII)
_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_LITERAL_WORDS = ("True", "False", "inf", "nan")


class _Tokens:
    """The token table, as parallel lists (a long program has millions of tokens).

    `kinds[t]` is 'name', 'number', 'eof', 'bad' or the punctuation character
    itself; `newlines[t]` says whether a new line precedes token t. Scanning
    stops at the first bad token (an unexpected character or an overlong
    number): the parser reports it when it gets there, so errors come in
    reading order. Two 'eof' tokens end the table, so one token of lookahead
    never runs off it.
    """

    def __init__(self, text):
        self.kinds, self.texts, self.starts, self.newlines = kinds, texts, starts, newlines = [], [], [], []
        newline = False
        for match in _TOKEN_RE.finditer(text):  # NB: the hot loop of parsing a long program
            kind, value = match.lastgroup, match.group()
            if kind == "space":
                newline = newline or "\n" in value
                continue
            if kind == "punct":
                kind = value
            elif kind == "number" and len(value) > MAX_NUMBER_LENGTH:
                kind = "bad"
            kinds.append(kind)
            texts.append(value)
            starts.append(match.start())
            newlines.append(newline)
            newline = False
            if kind == "bad":
                break
        for _ in range(2):
            kinds.append("eof")
            texts.append("")
            starts.append(len(text))
            newlines.append(newline)


# Parameter values written as bare names that stand for dtypes (the printer
# writes `np.dtype.name`; float0's name is 'void', so that reads as float0 too).
_PARAM_DTYPES = {np.dtype(d).name: np.dtype(d) for d in DTYPE_FROM_SHORT_NAME.values() if d != float0}
_PARAM_DTYPES.update({"float0": float0, "void": float0})
_PARAM_CONSTANTS = {"True": True, "False": False, "None": None}


# -------------------- the parser --------------------

class _Parser:
    """Recursive descent over the token table. A token is named by its index."""

    def __init__(self, text):
        self.text = text
        tokens = _Tokens(text)
        self.kinds, self.texts, self.starts, self.newlines = (
            tokens.kinds, tokens.texts, tokens.starts, tokens.newlines)
        self.i = 0  # the next token
        self.depth = 0

    # ---- token access ----

    def at(self, kind, text=None, ahead=0):
        t = self.i + ahead
        return self.kinds[t] == kind and (text is None or self.texts[t] == text)

    def next(self):
        """Consume the next token and return its index."""
        t = self.i
        if self.kinds[t] != "eof":
            self.i = t + 1
        return t

    def expect(self, kind, what):
        if self.kinds[self.i] != kind:
            raise self.expected(what)
        return self.next()

    def expect_word(self, word):
        if not self.at("name", word):
            raise self.expected(repr(word))
        return self.next()

    def at_in(self):
        """At the `in (` that ends the equations (a variable may be named `in`)."""
        return self.at("name", "in") and self.kinds[self.i + 1] == "("

    def at_binder(self):
        return self.kinds[self.i] == "name" and self.kinds[self.i + 1] == ":"

    def describe(self, t):
        if self.kinds[t] == "eof":
            return "end of input"
        text = self.texts[t]
        return repr(text if len(text) <= 40 else text[:37] + "...")

    # ---- errors ----

    def error(self, t, reason):
        """A JaxprParseError at token `t`."""
        pos = self.starts[t]
        line = self.text.count("\n", 0, pos) + 1
        line_start = self.text.rfind("\n", 0, pos) + 1
        return JaxprParseError(reason, line, pos - line_start + 1, self._excerpt(line_start, pos))

    def _excerpt(self, line_start, pos):
        """The offending line, cut to at most 80 characters around `pos`, and a caret."""
        line_end = self.text.find("\n", pos)
        line_end = len(self.text) if line_end < 0 else line_end
        left = max(line_start, pos - 40)
        shown = self.text[left:min(line_end, left + 80)]
        if not shown.isprintable():
            return ""  # escaping would shift the caret; the line and column say where
        return f"\n    {shown}\n    {' ' * (pos - left)}^"

    def expected(self, what, t=None):
        """`expected <what>, found <the token at t>` (default: the next token)."""
        t = self.i if t is None else t
        if self.kinds[t] == "bad":  # a scanning error, reported where the parser reached it
            text = self.texts[t]
            if len(text) > MAX_NUMBER_LENGTH:
                return self.error(t, f"number longer than {MAX_NUMBER_LENGTH} characters")
            return self.error(t, f"unexpected character {text!r}")
        return self.error(t, f"expected {what}, found {self.describe(t)}")

    def enter(self, t):
        """One level deeper into a nested tuple or jaxpr: bounded, so that
        hostile nesting is an error and never a RecursionError."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(t, f"nesting deeper than {MAX_DEPTH} levels of tuples and jaxprs")

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
            t = self.next()
            if not _VAR_NAME_RE.fullmatch(self.texts[t]):
                raise self.expected("a variable name (lowercase letters)", t)
            self.next()  # ':'
            found.append((t, self.type()))
        return found

    def bind(self, scope, t, aval):
        name = self.texts[t]
        if name in scope:
            raise self.error(t, f"variable {name!r} is bound twice")
        var = scope[name] = Var(aval)
        return var

    def type(self):
        t = self.expect("name", "a dtype such as f32")
        dtype = DTYPE_FROM_SHORT_NAME.get(self.texts[t])
        if dtype is None:
            raise self.expected(f"a dtype ({', '.join(DTYPE_FROM_SHORT_NAME)})", t)
        self.expect("[", f"'[' after the dtype {self.texts[t]}")
        dims = []
        if not self.at("]"):
            dims.append(self.dimension())
            while self.at(","):
                self.next()
                if len(dims) == MAX_RANK:
                    raise self.error(self.i, f"more than {MAX_RANK} dimensions")
                dims.append(self.dimension())
        self.expect("]", "',' or ']' in the shape")
        weak = self.at("{") and self.at("name", "weak", ahead=1)
        if weak:
            self.next()
            self.next()
            self.expect("}", "'}' after '{weak'")
        return ShapedArray(dims, dtype, weak)

    def dimension(self):
        t = self.i
        if self.kinds[t] != "number" or not self.texts[t].isdigit():
            raise self.expected("a dimension (a non-negative integer)")
        value = int(self.texts[t])
        if value > MAX_DIMENSION:
            raise self.error(t, f"dimension {self.texts[t]} is larger than {MAX_DIMENSION}")
        self.next()
        return value

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
        out_binders = self.binders()
        self.expect("=", "a binder 'name:type' or '='")
        prim_token = self.expect("name", "a primitive name")
        prim = PRIMITIVES.get(self.texts[prim_token])
        if prim is None:
            raise self.error(prim_token, f"unknown primitive {self.describe(prim_token)}")
        params = self.params() if self.at("[") else {}
        # The operands end at a new line, ';' or `in (`: a line is one equation.
        invars = []
        while self.kinds[self.i] in ("name", "number") and not self.newlines[self.i] and not self.at_in():
            invars.append(self.atom(scope))
        if not (self.at(";") or self.newlines[self.i] or self.at_in()):
            raise self.expected("';', a new line or 'in' after the equation")
        # Outputs come into scope after the operands: `b = sin b` is an error.
        outvars = [self.bind(scope, t, aval) for t, aval in out_binders]
        self.check_eqn(prim, prim_token, invars, params, out_binders)
        return Eqn(prim, invars, outvars, params)

    def check_eqn(self, prim, prim_token, invars, params, out_binders):
        """Type-check one equation here, to report errors at its position."""
        try:
            expected = prim.abstract_eval([x.aval for x in invars], params)
        except Exception as error:  # hostile params can make abstract evaluation raise anything
            raise self.error(prim_token, f"{prim.name} rejects these operands or parameters: "
                                         f"{type(error).__name__}: {_shortened(error)}") from None
        if len(expected) != len(out_binders):
            raise self.error(prim_token, f"{prim.name} gives {len(expected)} outputs, "
                                         f"{len(out_binders)} are bound")
        for (t, aval), want in zip(out_binders, expected):
            if aval != want:
                raise self.error(t, f"{self.texts[t]} is declared {aval.str_short()} but "
                                    f"{prim.name} gives {want.str_short()}")

    def atom(self, scope):
        """A variable in `scope`, or a literal `value:type`."""
        t = self.i
        kind, text = self.kinds[t], self.texts[t]
        if kind not in ("name", "number"):
            raise self.expected("an operand (a variable or a literal)")
        self.next()
        if kind == "name" and not self.at(":"):
            var = scope.get(text)
            if var is None:
                raise self.error(t, f"undefined variable {self.describe(t)}")
            return var
        if kind == "name" and text not in _LITERAL_WORDS:
            raise self.error(t, f"expected an operand (a variable or a literal), found the binder "
                                f"'{text[:40]}:' (equations are separated by ';' or new lines)")
        self.next()  # ':'
        type_token = self.i
        aval = self.type()
        if aval.shape != ():
            raise self.error(type_token, f"a literal must have a rank-0 type, found {aval.str_short()}")
        return Literal(self.literal_value(t, aval.dtype), aval)

    def literal_value(self, t, dtype):
        """The NumPy scalar of `dtype` that token `t` writes."""
        text = self.texts[t]
        if dtype.kind == "b":
            if text not in ("True", "False"):
                raise self.expected("True or False for a bool literal", t)
            return np.bool_(text == "True")
        if text in ("True", "False"):
            raise self.error(t, f"{text} is not a {dtype.name} literal")
        if dtype.kind in "iu":
            if not _INT_RE.fullmatch(text):
                raise self.expected(f"an integer for a {dtype.name} literal", t)
            value, info = int(text), np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise self.error(t, f"{text} is out of range for {dtype.name}")
            return dtype.type(value)
        if dtype.kind == "f":
            return self.float_value(t, dtype.type)
        raise self.error(t, f"literals of dtype {dtype.name} are not supported")

    def float_value(self, t, float_type):
        text = self.texts[t]
        with np.errstate(all="ignore"):  # overflow is reported below, not warned about
            value = float_type(text)
        if np.isinf(value) and "inf" not in text:
            raise self.error(t, f"{text} is out of range for {np.dtype(float_type).name}")
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

    def params(self):
        self.next()  # '['
        params = {}
        while not self.at("]"):
            key = self.expect("name", "a parameter name or ']'")
            name = self.texts[key]
            if name in params:
                raise self.error(key, f"parameter {name!r} is given twice")
            self.expect("=", f"'=' after the parameter name {name}")
            params[name] = self.value()
        self.next()
        return params

    def value(self):
        t = self.i
        kind, text = self.kinds[t], self.texts[t]
        if kind == "number":
            self.next()
            return int(text) if _INT_RE.fullmatch(text) else float(self.float_value(t, float))
        if kind == "name":
            self.next()
            if text in _PARAM_CONSTANTS:
                return _PARAM_CONSTANTS[text]
            if text in ("inf", "nan"):
                return float(text)
            return _PARAM_DTYPES.get(text, text)  # any other name is a string
        if kind == "(":
            self.enter(t)
            items = self.sequence(self.value)
            self.depth -= 1
            return tuple(items)
        if kind == "{":
            jaxpr, _ = self.jaxpr()
            return ClosedJaxpr(jaxpr, [] if not jaxpr.constvars else None)
        raise self.expected("a parameter value (a number, a name, a tuple or a jaxpr)")
