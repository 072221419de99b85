"""Bring your own model: ``duoserve models add|list|remove`` (the ``duoserve`` console script).

:mod:`.add` runs one addition: detect the source, read what it declares (:mod:`.spec`),
draw the parity inputs, make the other framework's artifacts with the field's converters
(:mod:`.converters`; each step in its framework's own process, :mod:`.steps`), hold every
artifact to the source's runtime (:mod:`.parity`), and register it all at once
(:mod:`.register`).
"""
