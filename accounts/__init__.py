"""Users, logins, roles and data scope, and the audit log of reads of personal data."""
