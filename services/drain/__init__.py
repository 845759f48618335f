"""The drainer: runs workers of an old application version until that version's work is done."""
