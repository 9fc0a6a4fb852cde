package postgres

import (
	"reflect"
	"testing"
)

const seg16 = 16 << 20

func TestSegNameRoundTrip(t *testing.T) {
	for _, p := range []walPos{{1, 0}, {1, 255}, {1, 256}, {3, 0x1234}} {
		name := segName(p, seg16)
		got, ok := parseSegName(name, seg16)
		if !ok || got != p {
			t.Errorf("%v -> %s -> %v %v", p, name, got, ok)
		}
	}
	if segName(walPos{1, 256}, seg16) != "000000010000000100000000" {
		t.Errorf("segment 256 of 16 MiB is 000000010000000100000000, got %s", segName(walPos{1, 256}, seg16))
	}
	if _, ok := parseSegName("000000010000000000000100", seg16); ok {
		t.Error("segment number 0x100 is out of range for 16 MiB segments")
	}
	if _, ok := parseSegName("00000002.history", seg16); ok {
		t.Error("a history file parsed as a segment")
	}
}

// Across a promotion in the middle of segment 5 (timeline 1 -> 2): the
// segments before it come from timeline 1, segment 5 and later from 2.
func TestNeededSegmentsFollowTimelines(t *testing.T) {
	hist, err := parseHistory(2, []byte("1\t0/5000100\tno recovery target specified\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []timelineSpan{{1, 0}, {2, 0x5000100}}
	if !reflect.DeepEqual(hist, want) {
		t.Fatalf("history %v", hist)
	}
	got, err := neededSegments(walPos{1, 3}, 7, hist, seg16)
	if err != nil {
		t.Fatal(err)
	}
	wantSegs := []walPos{{1, 3}, {1, 4}, {2, 5}, {2, 6}}
	if !reflect.DeepEqual(got, wantSegs) {
		t.Fatalf("needed %v, want %v", got, wantSegs)
	}
	if _, err := neededSegments(walPos{3, 3}, 7, hist, seg16); err == nil {
		t.Error("a backup on a timeline outside the history was accepted")
	}
	if _, err := neededSegments(walPos{1, 6}, 7, hist, seg16); err == nil {
		t.Error("a backup taken on timeline 1 after timeline 2 branched off was accepted")
	}
}

func TestMissingRanges(t *testing.T) {
	got := missingRanges([]walPos{{1, 3}, {1, 4}, {1, 5}, {1, 9}, {2, 10}}, seg16)
	want := []string{"000000010000000000000003-000000010000000000000005", "000000010000000000000009", "00000002000000000000000A"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ranges %v, want %v", got, want)
	}
}
