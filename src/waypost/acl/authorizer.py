"""A token's compiled permissions: what one request may do, answered from dicts.

Consul's precedence, from ``acl/policy_authorizer.go``: for a resource name the exact rule
wins, else the longest matching prefix; where several policies name the same rule, deny
beats write beats list beats read. ``list`` grants read and list; ``write`` grants all.
A name no rule matches falls to the default (the agent's ``default_policy``), except that
ACL management is never granted by a default.

Prefix answers are memoised per name, so after the first request for a name an
authorization is one dict look-up; the memo is bounded so hostile names cannot grow it.
"""

from __future__ import annotations

from collections.abc import Iterable

from waypost.acl.rules import SCALARS, TREES, Rules

__all__ = ["ALLOW_ALL", "DENY_ALL", "MANAGE_ALL", "Authorizer"]

_RANK = {"read": 1, "list": 2, "write": 3, "deny": 4}
"""How two rules for the same name merge (the higher wins), as ``takesPrecedenceOver``."""
_GRANTS = {
    "write": frozenset({"read", "list", "write"}),
    "list": frozenset({"read", "list"}),
    "read": frozenset({"read"}),
    "deny": frozenset(),
}
_MEMO_LIMIT = 4096


class _Tree:
    """One kind's rules: exact names and prefixes (longest first), and the memo of answers."""

    __slots__ = ("exact", "memo", "prefixes")

    def __init__(self, exact: dict[str, str], prefixes: dict[str, str]) -> None:
        self.exact = exact
        self.prefixes = sorted(prefixes.items(), key=lambda p: -len(p[0]))
        self.memo: dict[str, str | None] = {}

    def level(self, name: str) -> str | None:
        try:
            return self.memo[name]
        except KeyError:
            pass
        found = self.exact.get(name)
        if found is None:
            found = next((level for prefix, level in self.prefixes if name.startswith(prefix)), None)
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()
        self.memo[name] = found
        return found

    def under(self, prefix: str) -> Iterable[str]:
        """Levels of every rule naming something below ``prefix``."""
        yield from (level for name, level in self.exact.items() if name.startswith(prefix))
        yield from (level for name, level in self.prefixes if name.startswith(prefix))


class Authorizer:
    """Permissions compiled from the rules of a token's policies (and identities)."""

    def __init__(
        self, rules: Iterable[Rules] = (), *, default: str = "deny", manage: bool = False, accessor: str = ""
    ) -> None:
        self.default = default
        """``allow`` or ``deny``: the answer where no rule matches."""
        self.manage = manage
        self.accessor = accessor
        """The token's AccessorID, for Consul's permission-denied messages."""
        merged: dict[tuple[str, bool], dict[str, str]] = {(k, p): {} for k in TREES for p in (False, True)}
        scalars: dict[str, str] = {}
        for source in rules:
            for rule in source.rules:
                table = merged[rule.kind, rule.prefix]
                table[rule.name] = _merge(table.get(rule.name), rule.policy)
            for kind, level in source.scalars.items():
                scalars[kind] = _merge(scalars.get(kind), level)
        self._trees = {kind: _Tree(merged[kind, False], merged[kind, True]) for kind in TREES}
        self._scalars = scalars
        self.unrestricted = manage or (default == "allow" and not any(merged.values()) and not scalars)
        """Nothing is filtered for it (ACL management aside), so answers need no filtering."""
        self.reads_all = frozenset(kind for kind in TREES if manage or self._reads_every(kind))
        """Kinds it may read every resource of, so filtering a list of them would keep all."""

    def _reads_every(self, kind: str) -> bool:
        tree = self._trees[kind]
        levels = [*tree.exact.values(), *(level for _, level in tree.prefixes)]
        if "deny" in levels:
            return False
        return self.default == "allow" or any(prefix == "" for prefix, _ in tree.prefixes)

    def allowed(self, kind: str, name: str, need: str) -> bool:
        """Whether ``need`` (read, list or write) is granted on ``kind`` resource ``name``;
        ``name`` is ignored for the cluster-wide kinds (acl, operator, ...)."""
        if self.manage:
            return True
        level = self._scalars.get(kind) if kind in SCALARS else self._trees[kind].level(name)
        if level is None:
            return self.default == "allow" and kind != "acl"
        return need in _GRANTS[level]

    def write_prefix(self, kind: str, prefix: str) -> bool:
        """Consul's ``KeyWritePrefix``: write on ``prefix`` and no rule below it that
        withholds write, as a recursive delete needs."""
        if self.manage:
            return True
        tree = self._trees[kind]
        if any(level != "write" for level in tree.under(prefix)):
            return False
        return self.allowed(kind, prefix, "write")


def _merge(old: str | None, new: str) -> str:
    if old is None or _RANK[new] > _RANK[old]:
        return new
    return old


ALLOW_ALL = Authorizer(default="allow")
DENY_ALL = Authorizer(default="deny")
MANAGE_ALL = Authorizer(manage=True)
