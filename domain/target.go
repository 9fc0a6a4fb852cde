package domain

// MaxTargetNameLen bounds a target name.
const MaxTargetNameLen = 64

// ValidTargetName reports whether name is a safe target name: 1–64 ASCII
// letters, digits, '_' or '-', starting with a letter or digit. Target
// names become parts of paths (scratch and drill directories), workflow
// ids and metric labels, so names such as "../x", "a/b" or "." never reach
// them: the configuration refuses them and the API answers 400.
func ValidTargetName(name string) bool {
	if name == "" || len(name) > MaxTargetNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
