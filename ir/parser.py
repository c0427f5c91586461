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
    eqns    = (eqn (";" | NEWLINE))* [eqn]        -- ends at `in (`
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
MAX_DIMENSION = 2**63 - 1

__all__ = ["JaxprParseError", "parse", "MAX_DEPTH", "MAX_NUMBER_LENGTH"]


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
    start = parser.peek()
    jaxpr, const_binders = parser.jaxpr()
    parser.expect("eof", "end of input after the jaxpr")
    try:
        check(jaxpr)  # NB: the per-equation checks above should already have caught everything
    except Exception as error:  # hostile params can make abstract evaluation raise anything
        raise parser.error(start, f"ill-typed jaxpr: {error}") from None
    if consts is None:
        return ClosedJaxpr(jaxpr, [] if not jaxpr.constvars else None)
    return ClosedJaxpr(jaxpr, _checked_consts(parser, start, jaxpr, const_binders, consts))


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
            raise parser.error(token, f"const {i} for {token.text!r}: {error}") from None
        if aval.shape != var.aval.shape or aval.dtype != var.aval.dtype:
            raise parser.error(token, f"const {i} for {token.text!r} has type {aval.str_short()}, "
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
        self.kinds, self.texts, self.starts, self.newlines = [], [], [], []
        newline = False
        for match in _TOKEN_RE.finditer(text):
            kind, value = match.lastgroup, match.group()
            if kind == "space":
                newline = newline or "\n" in value
                continue
            if kind == "punct":
                kind = value
            elif kind == "number" and len(value) > MAX_NUMBER_LENGTH:
                kind = "bad"
            self._add(kind, value, match.start(), newline)
            newline = False
            if kind == "bad":
                break
        self._add("eof", "", len(text), newline)
        self._add("eof", "", len(text), newline)

    def _add(self, kind, value, start, newline):
        self.kinds.append(kind)
        self.texts.append(value)
        self.starts.append(start)
        self.newlines.append(newline)


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
        """A jaxpr and the binder tokens of its constvars (for errors about consts)."""
        opening = self.expect("{", "'{' opening a jaxpr")
        self.enter(opening)
        self.expect_word("lambda")
        scope = {}  # name -> Var; each jaxpr has its own, as jaxprs are closed
        const_binders = self.binders()
        self.expect(";", "a binder 'name:type' or ';' after the constvars")
        in_binders = self.binders()
        self.expect(".", "a binder 'name:type' or '.' after the input binders")
        self.expect_word("let")
        constvars = [self.bind(scope, token, aval) for token, aval in const_binders]
        invars = [self.bind(scope, token, aval) for token, aval in in_binders]
        eqns = self.eqns(scope)
        outvars = self.outs(scope)
        self.expect("}", "'}' closing the jaxpr")
        self.depth -= 1
        return Jaxpr(constvars, invars, eqns, outvars), [token for token, _ in const_binders]

    def binders(self):
        """`name:type` binders, as (name token, aval) pairs, not yet in scope."""
        found = []
        while self.at_binder():
            found.append(self.binder())
        return found

    def binder(self):
        token = self.next()
        if not _VAR_NAME_RE.fullmatch(token.text):
            raise self.expected("a variable name (lowercase letters)", token)
        self.next()  # ':'
        return token, self.type()

    def bind(self, scope, token, aval):
        if token.text in scope:
            raise self.error(token, f"variable {token.text!r} is bound twice")
        var = scope[token.text] = Var(aval)
        return var

    def type(self):
        token = self.expect("name", "a dtype such as f32")
        dtype = DTYPE_FROM_SHORT_NAME.get(token.text)
        if dtype is None:
            raise self.error(token, f"expected a dtype ({', '.join(DTYPE_FROM_SHORT_NAME)}), "
                                    f"found {token.describe()}")
        self.expect("[", f"'[' after the dtype {token.text}")
        dims = []
        if not self.at("]"):
            dims.append(self.dimension())
            while self.at(","):
                self.next()
                dims.append(self.dimension())
        self.expect("]", "',' or ']' in the shape")
        weak = self.at("{") and self.at("name", "weak", ahead=1)
        if weak:
            self.next()
            self.next()
            self.expect("}", "'}' after '{weak'")
        return ShapedArray(dims, dtype, weak)

    def dimension(self):
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self.expected("a dimension (a non-negative integer)", token)
        value = int(token.text)
        if value > MAX_DIMENSION:
            raise self.error(token, f"dimension {token.text} is larger than {MAX_DIMENSION}")
        self.next()
        return value

    # ---- equations ----

    def eqns(self, scope):
        """Equations up to `in (`, read by a loop (no recursion per equation)."""
        eqns = []
        while not self.at_in():
            eqns.append(self.eqn(scope))
            token = self.peek()
            if token.kind == ";":
                self.next()
            elif not (token.newline or self.at_in()):
                raise self.expected("';', a new line or 'in' after the equation", token)
        self.next()  # 'in'
        return eqns

    def eqn(self, scope):
        start = self.peek()
        if not (self.at_binder() or self.at("=")):
            raise self.expected("an equation 'name:type = primitive ...' or 'in'", start)
        out_binders = self.binders()
        self.expect("=", "a binder 'name:type' or '='")
        prim_token = self.expect("name", "a primitive name")
        prim = PRIMITIVES.get(prim_token.text)
        if prim is None:
            raise self.error(prim_token, f"unknown primitive {prim_token.describe()}")
        params = self.params() if self.at("[") else {}
        invars = []
        # The operands end at a new line, ';' or `in (`: a line is one equation.
        while (self.at("name") or self.at("number")) and not self.peek().newline and not self.at_in():
            invars.append(self.atom(scope))
        # Outputs come into scope after the operands: `b = sin b` is an error.
        outvars = [self.bind(scope, token, aval) for token, aval in out_binders]
        self.check_eqn(prim, prim_token, invars, params, out_binders)
        return Eqn(prim, invars, outvars, params)

    def check_eqn(self, prim, prim_token, invars, params, out_binders):
        """Type-check one equation here, to report errors at its position."""
        try:
            expected = prim.abstract_eval([x.aval for x in invars], params)
        except Exception as error:  # hostile params can make abstract evaluation raise anything
            raise self.error(prim_token, f"{prim.name} rejects these operands or parameters: "
                                         f"{type(error).__name__}: {error}") from None
        if len(expected) != len(out_binders):
            raise self.error(prim_token, f"{prim.name} gives {len(expected)} outputs, "
                                         f"{len(out_binders)} are bound")
        for (token, aval), want in zip(out_binders, expected):
            if aval != want:
                raise self.error(token, f"{token.text} is declared {aval.str_short()} but "
                                        f"{prim.name} gives {want.str_short()}")

    def atom(self, scope):
        token = self.next()
        if token.kind not in ("name", "number"):
            raise self.expected("an operand (a variable or a literal)", token)
        if token.kind == "name" and not self.at(":"):
            var = scope.get(token.text)
            if var is None:
                raise self.error(token, f"undefined variable {token.describe()}")
            return var
        if token.kind == "name" and token.text not in _LITERAL_WORDS:
            raise self.error(token, f"expected an operand (a variable or a literal), found the binder "
                                    f"'{token.describe()[1:-1]}:' (equations are separated by ';' "
                                    "or new lines)")
        self.expect(":", f"':' and a type after the literal {token.describe()}")
        type_token = self.peek()
        aval = self.type()
        if aval.shape != ():
            raise self.error(type_token, f"a literal must have a rank-0 type, found {aval.str_short()}")
        return Literal(self.literal_value(token, aval.dtype), aval)

    def literal_value(self, token, dtype):
        """The NumPy scalar of `dtype` that `token` writes."""
        text = token.text
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
        raise self.error(token, f"literals of dtype {dtype.name} are not supported")

    def float_value(self, token, float_type):
        with np.errstate(all="ignore"):  # overflow is reported below, not warned about
            value = float_type(token.text)
        if np.isinf(value) and "inf" not in token.text:
            raise self.error(token, f"{token.text} is out of range for {np.dtype(float_type).name}")
        return value

    def outs(self, scope):
        return self.sequence(lambda: self.atom(scope))

    def sequence(self, item):
        """`()`, `(x,)` or `(x, y, ...)` (a trailing comma allowed), as a list."""
        self.expect("(", "'('")
        items = []
        while not self.at(")"):
            items.append(item())
            if self.at(","):
                self.next()
            elif len(items) == 1:
                raise self.expected("',' (a one-element tuple is written '(x,)')", self.peek())
            elif not self.at(")"):
                raise self.expected("',' or ')'", self.peek())
        self.next()
        return items

    # ---- parameters ----

    def params(self):
        self.next()  # '['
        params = {}
        while not self.at("]"):
            key = self.expect("name", "a parameter name or ']'")
            if key.text in params:
                raise self.error(key, f"parameter {key.text!r} is given twice")
            self.expect("=", f"'=' after the parameter name {key.text}")
            params[key.text] = self.value()
        self.next()
        return params

    def value(self):
        token = self.peek()
        if token.kind == "number":
            self.next()
            if _INT_RE.fullmatch(token.text):
                return int(token.text)
            return float(self.float_value(token, float))
        if token.kind == "name":
            self.next()
            if token.text in _PARAM_CONSTANTS:
                return _PARAM_CONSTANTS[token.text]
            if token.text in ("inf", "nan"):
                return float(token.text)
            return _PARAM_DTYPES.get(token.text, token.text)
        if token.kind == "(":
            self.enter(token)
            items = self.sequence(self.value)
            self.depth -= 1
            return tuple(items)
        if token.kind == "{":
            jaxpr, _ = self.jaxpr()
            return ClosedJaxpr(jaxpr, [] if not jaxpr.constvars else None)
        raise self.expected("a parameter value (a number, a name, a tuple or a jaxpr)", token)
