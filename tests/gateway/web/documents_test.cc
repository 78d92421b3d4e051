#include "gateway/web/documents.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gateway/core/crypto.h"

namespace songda::web {
namespace {

class DocumentDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("songda-web-docs-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Document put(const std::string& bytes, const std::string& name_as = "") {
    const std::string sha = sha256_hex(bytes);
    std::ofstream(dir_ / (name_as.empty() ? sha : name_as), std::ios::binary) << bytes;
    return Document{"DOC-1", "传票", sha, "", 1};
  }
  std::filesystem::path dir_;
};

TEST_F(DocumentDirectoryTest, ServesBytesThatHashToTheEventsSha256) {
  const std::string pdf = "%PDF-1.4\n传票\n%%EOF\n";
  const auto doc = put(pdf);
  DocumentDirectory d(dir_.string());
  EXPECT_TRUE(d.has(doc));
  auto got = d.load(doc);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->bytes, pdf);
  EXPECT_EQ(got->sha256_hex, doc.sha256);
  EXPECT_EQ(got->content_type, "application/pdf");
}

TEST_F(DocumentDirectoryTest, RefusesAFileWhoseBytesDoNotMatch) {
  auto doc = put("the real document");
  std::ofstream(dir_ / doc.sha256, std::ios::binary) << "tampered";
  auto got = DocumentDirectory(dir_.string()).load(doc);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, "document_mismatch");
}

TEST_F(DocumentDirectoryTest, MissingUnconfiguredOrBadHashIsUnavailable) {
  Document missing{"DOC-2", "x", std::string(64, 'b'), "", 0};
  EXPECT_EQ(DocumentDirectory(dir_.string()).load(missing).error().code, "document_unavailable");
  EXPECT_EQ(DocumentDirectory("").load(missing).error().code, "document_unavailable");
  Document traversal{"DOC-3", "x", "../../etc/passwd", "", 0};
  EXPECT_FALSE(DocumentDirectory(dir_.string()).has(traversal));
  EXPECT_EQ(DocumentDirectory(dir_.string()).load(traversal).error().code, "document_unavailable");
  Document upper{"DOC-4", "x", std::string(64, 'A'), "", 0};
  EXPECT_FALSE(is_sha256_hex(upper.sha256));
}

}  // namespace
}  // namespace songda::web
