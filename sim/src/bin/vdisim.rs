fn main() {
    println!("vdisim");
}
