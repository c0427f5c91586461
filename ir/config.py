"""Process-wide switches.

`debug`: check every jaxpr after it is built and every implementation result
against abstract evaluation (on in the test suite; env FTRANS_DEBUG=1).
"""
import os

debug = os.environ.get("FTRANS_DEBUG", "") not in ("", "0")
