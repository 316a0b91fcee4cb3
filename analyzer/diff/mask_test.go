package diff

import (
	"slices"
	"testing"
)

// maskCases are strings around the edges of the default masks, for the
// hand-written matchers (see maskMatchersAgree).
var maskCases = []string{
	"",
	"123e4567-e89b-12d3-a456-426614174000",
	"9B2E4567-E89B-12D3-A456-426614174999",
	"id 123e4567-e89b-12d3-a456-426614174000 and 00000000-0000-0000-0000-000000000000.",
	"123e4567-e89b-12d3-a456-42661417400",             // one digit short
	"123e4567-e89b-12d3-a456-4266141740000",           // one too many: matches its first 36 bytes
	"123e4567-e89b-12d3-a456_426614174000",            // wrong separator
	"g23e4567-e89b-12d3-a456-426614174000",            // not hex
	"x123e4567-e89b-12d3-a456-426614174000-e89b-12d3", // overlapping candidates
	"123e4567-e89b-12d3-a456-426614174000123e4567-e89b-12d3-a456-426614174000",
	"é123e4567-e89b-12d3-a456-426614174000\xff",
	"2026-01-02T15:04:05Z",
	"2026-01-02t15:04:05z",
	"2026-01-02 15:04",
	"2026-01-02T15:04:05.123456789+01:00",
	"2026-01-02T15:04:05,5-0130",
	"2026-01-02T15:04:05.+01",
	"2026-01-02T15:04:05.Z",
	"2026-01-02T15:04:5Z",
	"2026-01-02T15:04:+01:0",
	"2026-01-02T15:04+01:",
	"2026-01-02T15:04+1",
	"2026-01-02T15:04-01:30:00",
	"2026-01-02T15:04:05Z2026-01-02T15:04:05Z",
	"at 12026-01-02T15:04:05Z, then 2026-01-02",
	"2026-01-02",
	"2026-01-02X15:04:05Z",
	"20260-01-02T15:04:05Z",
	"2026-01-02T15:04:05.123",
	"2026-01-02T15:04:05+0100",
	"2026-01-02T15:04:05+01:00:",
	"١٢٣٤-01-02T15:04:05Z", // Arabic-Indic digits are not \d
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Sun, 31 Dec 2026 23:59:59 GMT; Mon, 01 Jan 2027 00:00:00 GMT",
	"Mon, 02 Jan 2006 15:04:05 UTC",
	"Mon, 2 Jan 2006 15:04:05 GMT",
	"mon, 02 Jan 2006 15:04:05 GMT",
	"Mon, 02 Jan 2006 15:04:05 GMTX",
	"Xyz, 02 Jan 2006 15:04:05 GMT",
	"Mon, 02 Jun 2006 15:04:05 GMT",
	"Mon, 02 Jux 2006 15:04:05 GMT",
	"Mon, 02 Jan 2006 15:04:05 GM",
	"\x000\x00 2026-01-02T15:04:05Z \x001\x00",
}

// defaultMaskers compiles DefaultMasks, checking that each has a
// hand-written matcher.
func defaultMaskers(t testing.TB) []masker {
	var ms []masker
	for i, src := range DefaultMasks() {
		m, err := compileMask(i, src)
		if err != nil {
			t.Fatal(err)
		}
		if m.find == nil {
			t.Fatalf("mask %q has no hand-written matcher", src)
		}
		ms = append(ms, m)
	}
	return ms
}

// maskMatchersAgree checks that each default mask's hand-written matcher
// finds the matches its regexp finds in s, and replaces them alike.
func maskMatchersAgree(t *testing.T, ms []masker, s string) {
	t.Helper()
	for i, m := range ms {
		re := m.re // the regexp of the mask, as compiled for every mask
		var got [][]int
		for from := 0; ; {
			start, end := m.find(s, from)
			if start < 0 {
				break
			}
			got = append(got, []int{start, end})
			from = end
		}
		want := re.FindAllStringIndex(s, -1)
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("mask %d in %q: found %v, the regexp %v", i, s, got, want)
		}
		if got, want := m.replace(s), re.ReplaceAllLiteralString(s, m.mark); got != want {
			t.Errorf("mask %d in %q: replaced %q, the regexp %q", i, s, got, want)
		}
	}
}

func TestMaskMatchers(t *testing.T) {
	ms := defaultMaskers(t)
	for _, s := range maskCases {
		maskMatchersAgree(t, ms, s)
	}
}

// FuzzMaskMatchers: the default masks' hand-written matchers find and
// replace what their regexps find and replace, in any string.
func FuzzMaskMatchers(f *testing.F) {
	for _, s := range maskCases {
		f.Add(s)
	}
	ms := defaultMaskers(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<10 {
			return // matches are at most a few dozen bytes long; long inputs only slow the regexps down
		}
		maskMatchersAgree(t, ms, s)
	})
}

// TestMaskOrder: masks apply in order, each to the result of the ones
// before it, whether they have a hand-written matcher or not.
func TestMaskOrder(t *testing.T) {
	d := newDiffer(t, Config{Masks: []string{`\x00[0-9]\x00-[a-z]+`, MaskUUID}})
	got := d.mask("id=123e4567-e89b-12d3-a456-426614174000-abc at 2026-01-02T15:04:05Z on Mon, 02 Jan 2006 15:04:05 GMT")
	if want := "id=\x003\x00 at \x001\x00 on \x002\x00"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
