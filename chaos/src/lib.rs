//! Will own the `Subject` trait, the subjects (`etcd`, `tikv`), the runtimes (`lab`, `kubernetes`), the faults and their cleanups, state capture and the trial worker.
