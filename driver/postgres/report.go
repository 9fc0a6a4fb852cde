package postgres

import "github.com/themis-maintenance/themis/driver/assess"

// Report formatting is shared with the other drivers (package assess);
// these are its short local names.

func bytesHuman(b int64) string { return assess.BytesHuman(b) }

func round1(f float64) float64 { return assess.Round1(f) }

func round3(f float64) float64 { return assess.Round3(f) }
