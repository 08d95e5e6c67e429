// Package division reads GB/T 2260 administrative division codes (行政区划代码): six digits, two
// for the province-level division, two for the prefecture-level city and two for the county-level
// district, county or county-level city.
//
// An ID number's first six digits are the division where the person was first registered (户籍),
// and events name a residence by code or by names; eligibility rules compare names
// (`person.hukou.city == "嘉兴"`). Lookup turns a code into names and Find turns names into a
// code, each as precisely as the embedded table allows.
//
// The table (data/divisions.tsv) holds every province-level division, and the prefecture- and
// county-level divisions of Shanghai, Jiangsu, Zhejiang and Anhui, where the service runs. Codes
// elsewhere still resolve to their province. The table never changes at run time; the package
// holds no other state and owns no Redis keys.
package division
