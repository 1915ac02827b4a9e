"""The pure domain: identifiers, event kinds, canonical hashing, lineage rules, errors. No I/O."""
