"""Pure planning: given spec, status, what was observed and ``now``, decide what to do.

Nothing here performs I/O or imports a client library (an import-linter contract checks it), so
every decision is unit-tested with plain values and an injected clock.
"""
