"""``waypost template``: consul-template for waypost.

The language (Go's ``text/template``: ``lexer``, ``parser``, ``evaluate``, ``gofmt``) and
consul-template's functions (``funcs``, ``render``, ``deps``, ``values``) are sans-I/O:
template text plus a brain of data in, text or an error out. ``watcher``, ``output`` and
``runner`` are the daemon around them, reaching the agent only through ``waypost.client``.
"""

from waypost.template.errors import TemplateError
from waypost.template.render import CompiledTemplate, RenderResult

__all__ = ["CompiledTemplate", "RenderResult", "TemplateError"]
