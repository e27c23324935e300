"""The notices app's data: see ../shared/DESIGN.md; its capability has an issue of its own."""
