package fleet

// Merge returns the layers merged into one new Values, lowest precedence first: a later
// layer's key replaces an earlier one's, nested maps are merged key by key, and lists
// and scalars are replaced whole (as Helm merges values files). The layers are not
// modified, and the result shares no maps or lists with them.
func Merge(layers ...Values) Values {
	out := Values{}
	for _, layer := range layers {
		mergeInto(out, layer)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := asMap(v); ok {
			if dm, ok := asMap(dst[k]); ok {
				mergeInto(dm, sm)
				continue
			}
			dm := map[string]any{}
			mergeInto(dm, sm)
			dst[k] = dm
			continue
		}
		dst[k] = deepCopy(v)
	}
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case Values:
		return m, true
	}
	return nil, false
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		mergeInto(out, t)
		return out
	case Values:
		out := make(map[string]any, len(t))
		mergeInto(out, t)
		return out
	case []any:
		out := make([]any, len(t))
		for i, item := range t {
			out[i] = deepCopy(item)
		}
		return out
	}
	return v
}
