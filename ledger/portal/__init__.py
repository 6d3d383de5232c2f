"""The portal role (Mynaportal's part of the linkage): card sign-in mapped to the portal's own code, the pages the
hub feeds it, and the rules for who may read one. Design and limits: docs/linkage.md (the portal role)."""
