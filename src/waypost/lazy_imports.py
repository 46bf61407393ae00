"""Libraries the agent imports the first time a feature uses them, not at start-up.

An empty agent's memory is mostly the libraries it imported, and most of those serve one
feature: lark (8 MiB of RSS) parses ``?filter=`` expressions and HCL files, which many
agents never see. A module that needs one of them names it here and binds the stand-in at
import, with the real module for the type checker::

    if TYPE_CHECKING:
        import lark
    else:
        from waypost.lazy_imports import lark

The stand-in loads the library on its first attribute access (``importlib``'s lazy loader),
so an ``except lark.LarkError`` clause costs nothing until an exception reaches it. (aiohttp
is no longer one of them: the agent's own HTTP calls use ``waypost.http_client``, and the
HTTP and Docker checks that still use aiohttp are themselves imported with their first
check.)
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["ec", "hashes", "lark", "re2", "rsa", "serialization", "x509"]


def _deferred(name: str) -> ModuleType:
    """``name`` as a module that runs its code on first use; the one already imported if any."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


lark = _deferred("lark")
re2 = _deferred("re2")  # 2.5 MiB, Go's regexp for filters and query templates (``waypost.goregexp``)
# cryptography (about 13 MiB), for the built-in CA (``waypost.connect.ca``): a server loads
# it to create the CA on its first start, an agent otherwise on its first leaf certificate
# or CA change. Its parent packages are light; loading any of these loads the bindings.
x509 = _deferred("cryptography.x509")
hashes = _deferred("cryptography.hazmat.primitives.hashes")
serialization = _deferred("cryptography.hazmat.primitives.serialization")
ec = _deferred("cryptography.hazmat.primitives.asymmetric.ec")
rsa = _deferred("cryptography.hazmat.primitives.asymmetric.rsa")
