package api

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/themis-maintenance/themis/domain"
)

//go:generate go run ./internal/gentasks openapi.yaml

// The TaskType enum and the TaskOptions schema of openapi.yaml are rendered
// from the task registry (package domain): each sits between a BEGIN and an
// END marker line, and RenderTaskSections replaces what is between them.
// `go generate ./api` rewrites the checked-in file (a test fails when it is
// stale); the server renders the same sections again from the registry it
// runs with, so a task type registered by an extension is in the document
// it serves.
const (
	sectionBegin = "# BEGIN generated from the task registry: "
	sectionEnd   = "# END generated: "
)

// taskSections maps each generated section to its renderer.
var taskSections = map[string]func(*bytes.Buffer){
	"TaskType":    renderTaskTypeEnum,
	"TaskOptions": renderTaskOptions,
}

// RenderTaskSections returns doc with its generated sections rendered from
// the current task registry. Every section must be present exactly once.
func RenderTaskSections(doc []byte) ([]byte, error) {
	names := make([]string, 0, len(taskSections))
	for n := range taskSections {
		names = append(names, n)
	}
	sort.Strings(names)
	out := doc
	for _, name := range names {
		begin := []byte(sectionBegin + name + " (go generate ./api; do not edit)\n")
		end := []byte(sectionEnd + name + "\n")
		i := bytes.Index(out, begin)
		if i < 0 || bytes.Count(out, begin) != 1 {
			return nil, fmt.Errorf("openapi.yaml: want one line %q", strings.TrimSpace(string(begin)))
		}
		start := i + len(begin)
		j := bytes.Index(out[start:], end)
		if j < 0 {
			return nil, fmt.Errorf("openapi.yaml: section %s has no line %q", name, strings.TrimSpace(string(end)))
		}
		// The END marker is indented like the BEGIN marker.
		lineStart := bytes.LastIndexByte(out[:start+j], '\n') + 1
		var body bytes.Buffer
		taskSections[name](&body)
		next := make([]byte, 0, len(out)+body.Len())
		next = append(next, out[:start]...)
		next = append(next, body.Bytes()...)
		next = append(next, out[lineStart:]...)
		out = next
	}
	return out, nil
}

func renderTaskTypeEnum(b *bytes.Buffer) {
	b.WriteString("    TaskType:\n      type: string\n      description: A maintenance task type (one Temporal activity).\n      enum:\n")
	for _, t := range domain.AllTaskTypes() {
		fmt.Fprintf(b, "        - %s\n", t)
	}
}

func renderTaskOptions(b *bytes.Buffer) {
	b.WriteString("    TaskOptions:\n      type: object\n" +
		"      description: Per task type parameters; unknown task types or option keys are 400.\n" +
		"      additionalProperties: false\n      properties:\n")
	for _, t := range domain.AllTaskTypes() {
		def, _ := domain.Info(t)
		fmt.Fprintf(b, "        %s:\n          type: object\n          additionalProperties: false\n", t)
		if def.AdminOnly {
			b.WriteString("          x-admin-only-task: true\n")
		}
		if len(def.Options) == 0 {
			fmt.Fprintf(b, "          description: %s takes no options.\n", t)
			continue
		}
		b.WriteString("          properties:\n")
		for _, k := range domain.OptionKeys(t) {
			o := def.Options[k]
			fmt.Fprintf(b, "            %s:\n", k)
			switch o.Kind {
			case domain.OptionInt, domain.OptionFloat:
				fmt.Fprintf(b, "              type: %s\n              minimum: %s\n              maximum: %s\n", o.Kind, yamlNumber(o.Min), yamlNumber(o.Max))
			case domain.OptionBool:
				b.WriteString("              type: boolean\n")
			case domain.OptionEnum:
				fmt.Fprintf(b, "              type: string\n              enum: [%s]\n", strings.Join(o.Values, ", "))
			case domain.OptionText:
				fmt.Fprintf(b, "              type: string\n              maxLength: %d\n", domain.MaxTextOption)
			}
			fmt.Fprintf(b, "              default: %s\n", yamlScalar(o.Default))
			if len(o.EngineDefaults) > 0 {
				engines := make([]string, 0, len(o.EngineDefaults))
				for e := range o.EngineDefaults {
					engines = append(engines, e)
				}
				sort.Strings(engines)
				b.WriteString("              x-engine-defaults:\n")
				for _, e := range engines {
					fmt.Fprintf(b, "                %s: %s\n", e, yamlScalar(o.EngineDefaults[e]))
				}
			}
			if o.AdminOnly {
				b.WriteString("              x-admin-only: true\n")
			}
			if o.WriterMin != nil {
				fmt.Fprintf(b, "              x-writer-min: %s\n", yamlNumber(*o.WriterMin))
			}
			if o.WriterMax != nil {
				fmt.Fprintf(b, "              x-writer-max: %s\n", yamlNumber(*o.WriterMax))
			}
			fmt.Fprintf(b, "              description: %s\n", strconv.Quote(o.Help))
		}
	}
}

func yamlNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func yamlScalar(v any) string {
	switch x := v.(type) {
	case float64:
		return yamlNumber(x)
	case string:
		return strconv.Quote(x)
	}
	return fmt.Sprint(v)
}
