// Checks names, escapes HELP texts and serializes families; compresses the result.
#include "koji_exporter/exposition.hpp"

#include <prometheus/text_serializer.h>
#include <zlib.h>

#include <fmt/format.h>

#include <string_view>

#include "koji_exporter/names.hpp"

namespace koji_exporter {
namespace {

// The text format escapes only backslash and line feed in HELP; prometheus-cpp 1.0.1
// writes HELP as given, so a multi-line help would break the exposition.
std::string EscapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void CheckNames(const prometheus::MetricFamily& family) {
  if (!IsValidMetricName(family.name)) {
    throw ExpositionError(fmt::format("invalid metric name \"{}\"", family.name));
  }
  for (const auto& sample : family.metric) {
    for (const auto& label : sample.label) {
      if (!IsValidLabelName(label.name)) {
        throw ExpositionError(fmt::format("metric \"{}\": invalid label name \"{}\"",
                                          family.name, label.name));
      }
    }
  }
}

// prometheus-cpp 1.0 writes NaN as "Nan". Prometheus reads either, but the text format
// spells it "NaN" and stricter parsers accept only that. Only sample lines are changed:
// a sample line ends with its value, and a newline inside a label value is escaped.
void SpellNaN(std::string& text) {
  constexpr std::string_view kWritten = " Nan\n";
  std::size_t at = 0;
  while ((at = text.find(kWritten, at)) != std::string::npos) {
    const std::size_t line_start = text.rfind('\n', at);
    const std::size_t first = line_start == std::string::npos ? 0 : line_start + 1;
    if (text[first] != '#') text.replace(at + 1, 3, "NaN");
    at += kWritten.size();
  }
}

}  // namespace

std::string RenderExposition(std::vector<prometheus::MetricFamily> families) {
  for (auto& family : families) {
    CheckNames(family);
    family.help = EscapeHelp(family.help);
  }
  std::string text = prometheus::TextSerializer().Serialize(families);
  SpellNaN(text);
  return text;
}

std::string GzipCompress(const std::string& body) {
  z_stream stream{};
  // windowBits 15 + 16 selects the gzip wrapper instead of zlib's own.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&stream, body.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  stream.avail_in = static_cast<uInt>(body.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("gzip: deflate did not finish");
  out.resize(stream.total_out);
  // deflateBound reserved about the size of the input; keep only what the body needs.
  out.shrink_to_fit();
  return out;
}

}  // namespace koji_exporter
