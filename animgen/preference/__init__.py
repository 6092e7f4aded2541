"""Oh et al. 2017 Sec. 4: which cinemagraph a user prefers (context features, AEm, joint model)."""
