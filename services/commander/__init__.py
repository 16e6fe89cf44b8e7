"""Commander: the platform's orchestration agent (status, image updates, rollbacks,
registry webhooks, audit log), making every change through heliostat's one change path."""
