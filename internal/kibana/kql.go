package kibana

import "strings"

// kqlFields returns the field names a simple KQL query tests, in order:
// each name that starts a term and is followed by ":", "<", "<=", ">" or
// ">=" ("verdict:mismatch and not role : baseline", "status.target >= 500").
// Quoted strings and the value after an operator (a word, a quoted phrase
// or a parenthesised list) are skipped, so "diffs:header:etag" yields
// "diffs" only. Wildcard field names ("*:x", "body.*:x") and nested
// queries ("a:{ b:c }") are not resolved: they yield nothing or the outer
// name. It is a linter's approximation, not a KQL parser.
func kqlFields(q string) []string {
	var fields []string
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == '"':
			i = skipQuoted(q, i)
		case isFieldStart(c) && (i == 0 || isTermBoundary(q[i-1])):
			j := i
			for j < len(q) && isFieldChar(q[j]) {
				j++
			}
			name := q[i:j]
			k := j
			for k < len(q) && q[k] == ' ' {
				k++
			}
			if k < len(q) && (q[k] == ':' || q[k] == '<' || q[k] == '>') {
				if !strings.Contains(name, "*") {
					fields = append(fields, name)
				}
				k++
				if k < len(q) && q[k] == '=' {
					k++
				}
				i = skipValue(q, k)
				continue
			}
			i = j
		default:
			i++
		}
	}
	return fields
}

// skipValue returns the index after the value that starts at or after i.
func skipValue(q string, i int) int {
	for i < len(q) && q[i] == ' ' {
		i++
	}
	if i >= len(q) {
		return i
	}
	switch q[i] {
	case '"':
		return skipQuoted(q, i)
	case '(', '{':
		open, closing := q[i], byte(')')
		if open == '{' {
			closing = '}'
		}
		depth := 0
		for i < len(q) {
			switch q[i] {
			case '"':
				i = skipQuoted(q, i)
				continue
			case open:
				depth++
			case closing:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(q) && q[i] != ' ' && q[i] != ')' && q[i] != '(' {
		if q[i] == '\\' {
			i++
		}
		i++
	}
	return i
}

// skipQuoted returns the index after the quoted string that starts at i.
func skipQuoted(q string, i int) int {
	for i++; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(q)
}

func isFieldStart(c byte) bool {
	return c == '@' || c == '_' || c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isFieldChar(c byte) bool {
	return isFieldStart(c) || c == '.' || c == '-' || c >= '0' && c <= '9'
}

func isTermBoundary(c byte) bool { return c == ' ' || c == '(' || c == '\t' || c == '\n' }
