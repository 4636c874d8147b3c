"""The local test bed: a real kube-apiserver, etcd and kube-controller-manager, OpenBao, the emulator.

Used by the pytest session fixtures and by ``openai-devstack up|down|env``. Everything
listens on loopback on free ports and keeps its data under one state folder (etcd on tmpfs).
"""

from openai_devstack.stack import Stack, StackEnv

__all__ = ["Stack", "StackEnv"]
