package promtest

import "testing"

func TestSum(t *testing.T) {
	body := `# TYPE x_total counter
x_total{a="1",b="2"} 3
x_total{a="1",b="3"} 4
x_total_other{a="1"} 100
y{a="1"} 5
`
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"x_total", nil, 7},
		{"x_total", []string{`b="2"`}, 3},
		{"x_total", []string{`a="1"`, `b="3"`}, 4},
		{"x_total", []string{`a="9"`}, 0},
		{"missing", nil, 0},
	} {
		got, err := Sum(body, c.name, c.labels...)
		if err != nil || got != c.want {
			t.Errorf("Sum(%s, %v) = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
	if _, err := Sum(`x{a="1"} NaNx`, "x"); err == nil {
		t.Error("an unparsable value must be an error")
	}
}
