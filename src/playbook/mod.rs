//! Playbooks: finding kinds to diagnosis steps and remediation proposals.
