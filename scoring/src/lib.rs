//! Will own the pure, versioned scorer, command classification, thrashing detection, comparison statistics, the scoring stage and re-scoring by replay.
