package route53test

import "math"

// regionLocations are the approximate coordinates (latitude, longitude) of
// AWS regions; latency routing here picks the record whose region is
// nearest to the client's region, a stand-in for Route53's latency
// measurements.
var regionLocations = map[string][2]float64{
	"us-east-1":      {38.9, -77.4},
	"us-east-2":      {40.0, -83.0},
	"us-west-1":      {37.4, -121.9},
	"us-west-2":      {45.8, -119.7},
	"ca-central-1":   {45.5, -73.6},
	"ca-west-1":      {51.0, -114.1},
	"sa-east-1":      {-23.5, -46.6},
	"mx-central-1":   {20.6, -100.4},
	"eu-west-1":      {53.3, -6.3},
	"eu-west-2":      {51.5, -0.1},
	"eu-west-3":      {48.9, 2.4},
	"eu-central-1":   {50.1, 8.7},
	"eu-central-2":   {47.4, 8.5},
	"eu-north-1":     {59.3, 18.1},
	"eu-south-1":     {45.5, 9.2},
	"eu-south-2":     {41.6, -0.9},
	"il-central-1":   {32.1, 34.8},
	"me-south-1":     {26.1, 50.6},
	"me-central-1":   {25.2, 55.3},
	"af-south-1":     {-33.9, 18.4},
	"ap-east-1":      {22.3, 114.2},
	"ap-south-1":     {19.1, 72.9},
	"ap-south-2":     {17.4, 78.5},
	"ap-northeast-1": {35.7, 139.7},
	"ap-northeast-2": {37.6, 127.0},
	"ap-northeast-3": {34.7, 135.5},
	"ap-southeast-1": {1.3, 103.8},
	"ap-southeast-2": {-33.9, 151.2},
	"ap-southeast-3": {-6.2, 106.8},
	"ap-southeast-4": {-37.8, 145.0},
	"ap-southeast-5": {3.1, 101.7},
	"cn-north-1":     {39.9, 116.4},
	"cn-northwest-1": {37.5, 105.2},
}

func knownRegion(r string) bool {
	_, ok := regionLocations[r]
	return ok
}

// regionDistance is the great-circle distance between two regions in
// kilometres; an unknown region is infinitely far.
func regionDistance(a, b string) float64 {
	if a == b {
		return 0
	}
	pa, okA := regionLocations[a]
	pb, okB := regionLocations[b]
	if !okA || !okB {
		return math.Inf(1)
	}
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	lat1, lat2 := rad(pa[0]), rad(pb[0])
	dlat, dlon := lat2-lat1, rad(pb[1]-pa[1])
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}
