"""A workstation's side of the reading-centre server: the workspace over HTTPS."""
