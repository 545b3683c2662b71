"""Forge adapters: where approval requests live (GitHub, GitLab, or plain git)."""
