"""A workload that uses a delivered key the way a pod does, to prove rotation costs no request.

Two threads: a "kubelet" that projects the Secret into a file (polling the apiserver, writing the
file atomically, and keeping the last content when the Secret disappears, as a mounted volume does),
and the application, which re-reads the file when it changes and calls the data plane every 50 ms.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kube_rest import KubeRest, secret_path


@dataclass
class CallRecord:
    at: float
    status: int
    key_suffix: str


@dataclass
class Workload:
    kubeconfig: Path
    namespace: str
    secret: str
    base_url: str
    folder: Path
    call_interval: float = 0.05
    sync_interval: float = 0.2
    ok_calls: int = 0
    failures: list[CallRecord] = field(default_factory=list)
    keys_seen: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def mounted(self) -> Path:
        return self.folder / "OPENAI_API_KEY"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        kube = KubeRest(self.kubeconfig)
        self._project(kube)
        if not self.mounted.exists():
            raise AssertionError("the Secret holds no key to mount")
        for target in (self._kubelet, self._application):
            thread = threading.Thread(target=target, args=(kube,) if target == self._kubelet else (), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _project(self, kube: KubeRest) -> None:
        secret = kube.read(secret_path(self.namespace, self.secret))
        if secret is None:
            return  # a mounted volume keeps its last content
        data = (secret.get("data") or {}).get("OPENAI_API_KEY")
        if data is None:
            return
        value = base64.b64decode(data).decode()
        if self.mounted.exists() and self.mounted.read_text() == value:
            return
        partial = self.folder / ".OPENAI_API_KEY.partial"
        partial.write_text(value)
        os.replace(partial, self.mounted)

    def _kubelet(self, kube: KubeRest) -> None:
        with kube:
            while not self._stop.wait(self.sync_interval):
                self._project(kube)

    def _application(self) -> None:
        key, stamp = "", 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.call_interval):
                current = self.mounted.stat().st_mtime_ns
                if current != stamp:
                    key, stamp = self.mounted.read_text(), current
                    if key not in self.keys_seen:
                        self.keys_seen.append(key)
                status = client.get(f"{self.base_url}/models", headers={"Authorization": f"Bearer {key}"}).status_code
                if status == 200:
                    self.ok_calls += 1
                else:
                    self.failures.append(CallRecord(time.monotonic(), status, key[-4:]))
