"""The hash-chained audit log: who sent what where, provably unaltered.

- :mod:`~interlace.security.audit.chain`: the canonical form of an entry, its hash, verification;
- :mod:`~interlace.security.audit.entry`: a request record as an entry body;
- :mod:`~interlace.security.audit.store`: appending to the chain and reading it in the database;
- :mod:`~interlace.security.audit.writer`: the observer that appends off the request path, spooling
  to disk while the database is down.
"""

from interlace.security.audit.chain import (
    GENESIS,
    ChainProblem,
    ChainRow,
    ChainVerifier,
    Verification,
    canonical,
    content_digest,
    entry_hash,
    verify_rows,
)
from interlace.security.audit.entry import ContentMode, audit_body
from interlace.security.audit.store import (
    ALL_TENANTS,
    AuditFilter,
    append_chain,
    export_line,
    head,
    line_row,
    page,
    parse_bound,
    rows,
    verify,
)
from interlace.security.audit.writer import AuditStats, AuditWriter, default_audit_spool_dir

__all__ = [
    "ALL_TENANTS",
    "GENESIS",
    "AuditFilter",
    "AuditStats",
    "AuditWriter",
    "ChainProblem",
    "ChainRow",
    "ChainVerifier",
    "ContentMode",
    "Verification",
    "append_chain",
    "audit_body",
    "canonical",
    "content_digest",
    "default_audit_spool_dir",
    "entry_hash",
    "export_line",
    "head",
    "line_row",
    "page",
    "parse_bound",
    "rows",
    "verify",
    "verify_rows",
]
