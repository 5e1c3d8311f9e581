"""The portal: participants' pages behind the scheme's email links, rendered on the server."""
