"""``--edits`` specs: the embedded set, CounterFact and zsRE (downloaded or local files)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from editguard.data.paths import editguard_home
from editguard.edits.download import download
from editguard.edits.formats import read_counterfact, read_zsre
from editguard.edits.request import EditRequest
from editguard.edits.geonames import embedded_edits

COUNTERFACT_URL = "https://rome.baulab.info/data/dsets/counterfact.json"
ZSRE_URL = "https://rome.baulab.info/data/dsets/zsre_mem_eval.json"


@dataclasses.dataclass(frozen=True)
class EditSource:
    """A parsed ``--edits`` spec: ``embedded``, ``counterfact``, ``zsre``, ``counterfact:PATH``, ``zsre:PATH``."""

    kind: str
    path: Path | None = None

    ACCEPTED = ("embedded", "counterfact", "zsre", "counterfact:PATH", "zsre:PATH")
    _URLS = MappingProxyType({"counterfact": COUNTERFACT_URL, "zsre": ZSRE_URL})

    @classmethod
    def parse(cls, spec: str) -> "EditSource":
        spec = spec.strip()
        kind, sep, rest = spec.partition(":")
        if spec == "embedded":
            return cls("embedded")
        if kind in cls._URLS and not sep:
            return cls(kind)
        if kind in cls._URLS and rest.strip():
            return cls(kind, Path(rest.strip()).expanduser())
        raise ValueError(f"unknown edit source {spec!r}; accepted forms: {', '.join(cls.ACCEPTED)}")

    def load(self, seed: int = 0) -> list[EditRequest]:
        """The requests, in source order (``seed`` only shapes the embedded set; ``sample`` picks edits)."""
        if self.kind == "embedded":
            return embedded_edits(seed)
        path = self.path
        if path is None:
            url = self._URLS[self.kind]
            path = editguard_home() / "downloads" / url.rsplit("/", 1)[-1]
            if not path.is_file():
                download(url, path, local_hint=f"'{self.kind}:/path/to/{path.name}'")
        elif not path.is_file():
            fmt = "CounterFact" if self.kind == "counterfact" else "zsRE"
            raise FileNotFoundError(f"edit source {self.kind}:{path}: no such file; pass the path of "
                                    f"an existing {fmt} JSON file, or plain '{self.kind}' to download it")
        return read_counterfact(path) if self.kind == "counterfact" else read_zsre(path)


def load_edit_source(spec: str = "embedded", seed: int = 0) -> list[EditRequest]:
    """Parse ``spec`` (see ``EditSource.ACCEPTED``) and load its edit requests."""
    return EditSource.parse(spec).load(seed)
