"""The platform's inventory: a ledger document naming every object heliostat applied, so that
`observe` reads those and nothing else, and pruning never deletes what heliostat did not make.

An object is written to it before it is created, so a crash in between leaks nothing. One
write serves a whole apply: the first object not listed yet is written together with every
other object the manifests being applied describe (listing an object that does not exist
yet is harmless: `observe` skips it), instead of one read and write per object.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable

from heliostat.drivers.kubernetes_objects import ObjectRef
from heliostat.ledger_store import LedgerStore

INVENTORY = "inventory.json"


class Inventory:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._refs: list[ObjectRef] | None = None  # as last read or written

    def read(self) -> list[ObjectRef]:
        """The objects listed, read anew from the ledger."""
        refs = self._load()
        with self._lock:
            self._refs = refs
        return list(refs)

    def _load(self) -> list[ObjectRef]:
        data = self._store.read(INVENTORY)
        return [] if data is None else [ObjectRef.from_json(item)
                                        for item in json.loads(data)["objects"]]

    def remember(self, ref: ObjectRef, along: Iterable[ObjectRef],
                 live: Collection[ObjectRef]) -> None:
        """`ref` listed before it is created. When it is not yet, `along` (the other objects
        this apply may create) is written with it, and entries that are neither in `along`
        nor `live` (they name nothing heliostat has on the cluster) are dropped."""
        with self._lock:
            refs = self._current()
            if ref in refs:
                return
            wanted = {ref, *along}
            kept = [r for r in refs if r in wanted or r in live]
            self._write([*kept, *(r for r in sorted(wanted, key=_order) if r not in kept)])

    def forget(self, ref: ObjectRef) -> None:
        """`ref` no longer listed: called once it is deleted."""
        with self._lock:
            refs = self._current()
            if ref in refs:
                self._write([r for r in refs if r != ref])

    def _current(self) -> list[ObjectRef]:
        if self._refs is None:
            self._refs = self._load()
        return self._refs

    def _write(self, refs: list[ObjectRef]) -> None:
        ordered = sorted(set(refs), key=_order)
        self._store.write(INVENTORY, json.dumps(
            {"objects": [r.to_json() for r in ordered]}, indent=1).encode())
        self._refs = ordered


def _order(ref: ObjectRef) -> tuple[str, str]:
    return ref.kind, ref.name
