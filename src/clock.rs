//! Wall-clock time for records that outlive the process (drain deadlines, status
//! times, heartbeat counters). Timers use monotonic time instead.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
