// Package forecast fits growth trends to measurements and forecasts when a
// limit will be reached. It is pure: no I/O, no clocks, no globals. The
// capacity_trend_analysis task of every driver uses it (through
// driver/assess.Capacity) to turn the size samples kept in the history
// store into a growth rate (bytes per day) and a runway (days until the
// target's quota is full).
package forecast
