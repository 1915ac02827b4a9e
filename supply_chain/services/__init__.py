"""Use cases: onboarding, lots, custody, inspections, transformations, recalls, indexing, verification, trace."""
