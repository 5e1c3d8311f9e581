"""Registration's rules, free of I/O: institutions, programmes, interests, participants, credentials."""
