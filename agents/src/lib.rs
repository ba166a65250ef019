//! Will own the reference operator: a monitor that opens tickets and a runbook agent that repairs the lab, writing a real operator.db.
