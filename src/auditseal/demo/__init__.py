"""Demo data shipped with auditseal: a small sample of real Azure audit events (see NOTICE.md)."""
