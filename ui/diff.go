package ui

import "strings"

// maxDiffCells bounds the longest-common-subsequence table of a line diff; larger texts are
// compared line by line as sets.
const maxDiffCells = 400_000

// diffLines tells, for each line of a and each line of b, whether the other text has it too:
// the lines of a longest common subsequence are common, the others differ. Previews are small
// (manager.PreviewBytes), so the quadratic table is cheap; past maxDiffCells the lines are
// compared as multisets instead.
func diffLines(a, b []string) (commonA, commonB []bool) {
	commonA, commonB = make([]bool, len(a)), make([]bool, len(b))
	if len(a)*len(b) > maxDiffCells {
		count := map[string]int{}
		for _, l := range b {
			count[l]++
		}
		for i, l := range a {
			if count[l] > 0 {
				count[l]--
				commonA[i] = true
			}
		}
		count = map[string]int{}
		for _, l := range a {
			count[l]++
		}
		for i, l := range b {
			if count[l] > 0 {
				count[l]--
				commonB[i] = true
			}
		}
		return commonA, commonB
	}
	// lcs[i][j] is the length of the LCS of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			commonA[i], commonB[j] = true, true
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	return commonA, commonB
}

// splitLines splits a preview text into lines, without a trailing empty one.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
